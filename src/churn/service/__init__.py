"""The HTTP door: the same runs and the same scorer as `predict`, behind a FastAPI service.

`create_app(config)` builds the application (`churn.service.app`); `python main.py serve`
runs it on uvicorn (`churn.service.server`). The modules here only parse requests, call the
scoring functions the CLI uses, and format answers.
"""

"""`python -m churn.config > config.schema.json`: the JSON Schema of config.yaml."""

from churn.config.loading import write_schema

write_schema()

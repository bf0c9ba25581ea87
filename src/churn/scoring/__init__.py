"""The scoring side: a run's scorer, the scoring core every door composes, decisions and data quality,
the cluster door. Never imports the training side (tests/unit/test_architecture.py)."""

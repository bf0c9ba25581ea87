"""churn: config-driven batch training and scoring of customer-churn models."""

__version__ = "0.1.0"

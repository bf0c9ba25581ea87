"""Time to churn: survival metrics and the discrete-time hazard model (numpy and scikit-learn)."""

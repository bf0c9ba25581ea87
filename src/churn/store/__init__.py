"""What runs leave behind: run folders and their locks, the typed run record, crash-safe files, MLflow tracking."""

"""Reading and writing tables: files (CSV, gzip, Parquet) and databases, and the one missing-column check."""

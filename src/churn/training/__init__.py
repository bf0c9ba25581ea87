"""The training side: the stages of `train`, the comparison and threshold, metrics, the report."""

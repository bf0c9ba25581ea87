"""Explanations: contributions per input column and reason codes, exact TreeSHAP. Scoring side."""

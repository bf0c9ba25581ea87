"""Monitoring: the reference profile and PSI/CBPE, tallies of a batch, its verdict, the history, the page.
Scoring side."""

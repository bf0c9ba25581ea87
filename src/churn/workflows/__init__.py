"""The workflows: each a short sequence of calls to the stage modules, with the config.

- `train`: load and split a labelled table, compare candidates, fit the winner, score the
  test rows, gate, save a reported run (`churn.training.stages` holds its stages);
- `predict`: score a table with a saved run, chunk by chunk (`churn.scoring.core`);
- `evaluate`: a saved run's metrics on a labelled table;
- `report`: redraw a saved run's report.

The scoring side (`predict`) imports nothing of the training side, so scoring a
logistic-regression run starts without scikit-learn. `churn.pipeline` is their public face.
"""

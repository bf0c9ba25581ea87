"""The gate `init` writes: the best single column's ROC AUC less two standard errors of a test
ROC AUC (Hanley & McNeil). Checked by seeded simulation with a known AUC: the standard error is
the spread of test AUCs, and a model as good as the column clears the floor about 97.7 % of the
time (one-sided, two standard errors), so test-row noise alone rarely rejects a first run."""

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import roc_auc_score

from churn.workflows.init import auc_standard_error


@pytest.mark.parametrize(("auc", "rows", "share"), [(0.70, 80, 0.3), (0.74, 1_409, 0.265), (0.56, 6_000, 0.37)])
def test_the_floor_s_standard_error_matches_simulated_test_sets(auc, rows, share):
    rng = np.random.default_rng(7)
    shift = np.sqrt(2) * norm.ppf(auc)  # two unit normals this far apart rank at `auc`
    positives = round(rows * share)
    y = np.r_[np.ones(positives), np.zeros(rows - positives)]
    found = np.array(
        [
            roc_auc_score(y, np.r_[rng.normal(shift, 1, positives), rng.normal(0, 1, rows - positives)])
            for _ in range(200)
        ]
    )
    error = auc_standard_error(auc, rows, share)
    assert error == pytest.approx(found.std(), rel=0.2)
    assert 0.93 <= (found >= auc - 2 * error).mean() <= 1.0
    assert (found >= auc).mean() < 0.7  # the floor's margin matters: half the runs fall below the AUC itself

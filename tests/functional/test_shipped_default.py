"""The shipped config, its whole model comparison, on the full shipped data: the quality bar
the product is held to, and how the model it selects behaves."""

import pandas as pd
import pytest
from support import TELCO, write_telco_config

from churn import pipeline
from churn.config import load_config
from churn.scoring.scorers import score

pytestmark = pytest.mark.slow  # three candidates, twelve settings and sixty fits on 7,043 rows


@pytest.fixture(scope="module")
def telco_run(tmp_path_factory):
    """The shipped config trained on the full shipped data, into a temporary models folder."""
    folder = tmp_path_factory.mktemp("telco")
    config = load_config(write_telco_config(folder, comparison=True))
    return config, pipeline.train(config)


def test_default_config_on_the_shipped_data_meets_the_quality_bar(telco_run):
    _, result = telco_run
    assert result.metrics.roc_auc >= 0.84
    assert result.metrics.cv_roc_auc_mean >= 0.845
    assert result.record.data.rows_used == 7043
    assert result.record.status == "accepted"
    assert len(result.leaderboard) == 3 and result.leaderboard["model"].iloc[0] == result.record.model.name
    assert result.record.threshold.objective == "break_even"
    m = result.metrics.costs.model_dump()  # the cost-optimal threshold beats both trivial rules on the test rows
    assert m["expected_cost"] < min(m["cost_contact_nobody"], m["cost_contact_everyone"])


def probabilities_for(config, frame):
    return score(pipeline.load_run(config, None).scorer, frame).probabilities


def test_a_longer_contract_never_raises_churn_risk(telco_run):
    config, _ = telco_run
    frame = pd.read_csv(TELCO, dtype=str).sample(300, random_state=1)
    by_contract = [
        probabilities_for(config, frame.assign(Contract=c)) for c in ("Month-to-month", "One year", "Two year")
    ]
    assert (by_contract[1] <= by_contract[0]).all()
    assert (by_contract[2] <= by_contract[1]).all()

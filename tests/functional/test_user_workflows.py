"""The pipeline as a user sees it: the shipped data, the prediction contract, another table."""

import numpy as np
import pandas as pd
import pytest
import yaml
from support import TELCO, make_subscriptions, subscriptions_config, write_telco_config

from churn import pipeline
from churn.config import load_config
from churn.data_loader import load_training_data


@pytest.fixture(scope="module")
def telco_run(tmp_path_factory):
    """The shipped config's single model section (no comparison) trained on the full shipped
    data, into a temporary models folder: the prediction contract holds whatever the model.
    The shipped comparison itself is held to its quality bar in test_shipped_default.py."""
    folder = tmp_path_factory.mktemp("telco")
    config = load_config(write_telco_config(folder, comparison=False))
    return config, pipeline.train(config)


def test_predict_output_has_exactly_the_documented_columns(telco_run, tmp_path):
    config, _ = telco_run
    out = tmp_path / "p.csv"
    pipeline.predict(config, TELCO, out)
    predictions = pd.read_csv(out)
    assert list(predictions.columns) == [
        "customerID",
        "churn_probability",
        "churn_prediction",
        "churn_within_3m",
        "churn_within_6m",
        "churn_within_12m",
        "expected_months_12m",
    ]
    assert len(predictions) == 7043
    assert predictions["churn_probability"].between(0, 1).all()
    assert set(predictions["churn_prediction"]) == {0, 1}
    threshold = pipeline.load_run(config, None).record.threshold.value
    assert ((predictions["churn_probability"] >= threshold) == (predictions["churn_prediction"] == 1)).all()


def test_predict_input_may_drop_the_target_reorder_and_add_columns(telco_run, tmp_path):
    config, _ = telco_run
    source = pd.read_csv(TELCO, dtype=str).head(50)
    changed = source.drop(columns=["Churn"]).iloc[:, ::-1].assign(notes="x")
    changed.to_csv(tmp_path / "in.csv", index=False)
    pipeline.predict(config, tmp_path / "in.csv", tmp_path / "a.csv")
    source.to_csv(tmp_path / "orig.csv", index=False)
    pipeline.predict(config, tmp_path / "orig.csv", tmp_path / "b.csv")
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "a.csv"), pd.read_csv(tmp_path / "b.csv"))


def test_unseen_categories_and_blank_numbers_do_not_crash_and_are_warned(telco_run, tmp_path, caplog):
    config, _ = telco_run
    frame = pd.read_csv(TELCO, dtype=str).head(5)
    frame.loc[0, "Contract"] = "Ten year"
    frame.loc[1, "PaymentMethod"] = "Bitcoin"
    frame.loc[2, "TotalCharges"] = "   "
    frame.loc[3, "tenure"] = ""
    frame.to_csv(tmp_path / "odd.csv", index=False)
    result = pipeline.predict(config, tmp_path / "odd.csv", tmp_path / "p.csv")
    assert result.unseen_categories == {"Contract": 1, "PaymentMethod": 1}
    assert "column Contract has 1 value(s) never seen in training" in caplog.text
    assert pd.read_csv(tmp_path / "p.csv")["churn_probability"].notna().all()


# behaviour


def test_rows_differing_only_in_customer_id_get_the_same_probability(telco_run, tmp_path):
    # through the whole predict path, which reads the id column and writes it back
    config, _ = telco_run
    frame = pd.read_csv(TELCO, dtype=str).head(20)
    frame.to_csv(tmp_path / "a.csv", index=False)
    frame.assign(customerID=[f"NEW-{i}" for i in range(20)]).to_csv(tmp_path / "b.csv", index=False)
    first = pd.read_csv(pipeline.predict(config, tmp_path / "a.csv", tmp_path / "pa.csv").output)
    second = pd.read_csv(pipeline.predict(config, tmp_path / "b.csv", tmp_path / "pb.csv").output)
    assert second["customerID"].tolist() == [f"NEW-{i}" for i in range(20)]
    np.testing.assert_array_equal(first["churn_probability"], second["churn_probability"])


def test_shipped_data_schema_holds(telco_run):
    config, _ = telco_run
    raw = pd.read_csv(TELCO, dtype=str)
    assert raw["customerID"].is_unique
    assert set(raw["Churn"]) == {"Yes", "No"}
    data = load_training_data(TELCO, config.data)
    assert data.dropped_duplicate_ids == 0 and data.dropped_missing_target == 0


# another churn table, by config alone


@pytest.mark.parametrize(
    ("label", "positive", "id_column", "numbers_as"),
    [
        ("int", 1, "account", "int"),
        ("bool", True, None, "float"),
        ("text", "yes", "account", "float"),
    ],
)
def test_another_churn_table_trains_and_predicts_by_config_alone(tmp_path, label, positive, id_column, numbers_as):
    table = make_subscriptions(label=label)
    table.to_csv(tmp_path / "subs.csv", index=False)
    config_path = tmp_path / "subs.yaml"
    config_path.write_text(yaml.safe_dump(subscriptions_config(tmp_path / "subs.csv", positive, id_column)))
    config = load_config(config_path)
    result = pipeline.train(config)
    assert result.metrics.roc_auc > 0.7  # the generated signal is learnable

    # scoring file: no target, numbers spelled as floats where training saw ints (or back)
    score = make_subscriptions(rows=40, seed=5).drop(columns=["churned"])
    if numbers_as == "float":
        score[["months_active", "support_calls", "autopay"]] = score[
            ["months_active", "support_calls", "autopay"]
        ].astype(float)
    score.to_csv(tmp_path / "score.csv", index=False)
    out = pipeline.predict(config, tmp_path / "score.csv")
    predictions = pd.read_csv(out.output)
    expected = (["account"] if id_column else []) + ["churn_probability", "churn_prediction"]
    assert list(predictions.columns) == expected
    assert len(predictions) == 40
    assert out.unseen_categories == {}  # autopay 1.0 matches the 1 seen in training
    assert out.output == str(tmp_path / "predictions" / "score_predictions.csv")

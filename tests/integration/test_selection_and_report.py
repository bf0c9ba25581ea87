"""Candidate comparison, threshold choice, the validation gate and the report, on the Telco sample."""

import dataclasses
import json
import re
import struct

import numpy as np
import pandas as pd
import pytest
from support import TELCO_SAMPLE, trained_copy, write_quick_config

from churn import pipeline
from churn.config import load_config
from churn.data_loader import load_training_data, split_data
from churn.errors import ModelError
from churn.model import load_model, unwrap
from churn.store import runs
from churn.training.evaluation import cost_summary
from churn.training.report import CONTRIBUTIONS_PLOT, COST_PLOT, PLOTS, SURVIVAL_PLOTS

CANDIDATES = [
    {
        "name": "logistic_regression",
        "params": {"max_iter": 500},
        "search": {"method": "grid", "space": {"C": [0.1, 1.0]}},
    },
    {"name": "random_forest", "params": {"n_estimators": 30, "min_samples_leaf": 5}},
    {"name": "hist_gradient_boosting", "params": {"max_iter": 30}},
]


@pytest.fixture(scope="module")
def compared_template(tmp_path_factory):
    """The three candidates compared and the winner saved, once for the module."""
    folder = tmp_path_factory.mktemp("compared")
    changes = {"training.candidates": CANDIDATES, "survival.duration_column": "tenure"}  # the shipped sections
    config = load_config(write_quick_config(folder, changes))
    return folder, pipeline.train(config)


@pytest.fixture
def compared(compared_template, tmp_path):
    """This test's own copy of the compared run: whatever it changes, no other test sees."""
    template, trained = compared_template
    config = load_config(trained_copy(template, tmp_path))
    run_dir = config.paths.models_dir / trained.run_id
    return config, dataclasses.replace(trained, run_dir=run_dir)


def test_candidates_are_compared_and_the_best_becomes_the_model(compared):
    config, result = compared
    board = pd.read_csv(result.run_dir / "leaderboard.csv")
    assert board["model"].tolist() == result.leaderboard["model"].tolist()
    assert sorted(board["model"]) == ["hist_gradient_boosting", "logistic_regression", "random_forest"]
    assert board["roc_auc_mean"].is_monotonic_decreasing
    assert board.loc[board["model"] == "logistic_regression", "settings_tried"].item() == 2
    assert result.record.model.name == board["model"].iloc[0]
    model = unwrap(load_model(result.run_dir, result.record))
    assert (
        type(model.named_steps["classifier"]).__name__
        == {
            "logistic_regression": "LogisticRegression",
            "random_forest": "RandomForestClassifier",
            "hist_gradient_boosting": "HistGradientBoostingClassifier",
        }[board["model"].iloc[0]]
    )
    assert result.metrics.cv_roc_auc_mean == pytest.approx(board["roc_auc_mean"].iloc[0], abs=1e-4)


def test_threshold_is_chosen_without_looking_at_the_test_rows(write_config, tmp_path):
    """Scramble the features of exactly the rows that land in the test split: the split (which
    depends on the target only), the leaderboard and the threshold stay the same; test metrics move."""
    config = load_config(write_config())
    first = pipeline.train(config)
    data = load_training_data(TELCO_SAMPLE, config.data)
    _, X_test, _, _ = split_data(data.X, data.y, config.split)
    raw = pd.read_csv(TELCO_SAMPLE, dtype=str)
    rng = np.random.default_rng(0)
    for column in ("tenure", "MonthlyCharges", "Contract"):
        raw.loc[X_test.index, column] = rng.permutation(raw.loc[X_test.index, column].to_numpy())
    scrambled = tmp_path / "scrambled.csv"
    raw.to_csv(scrambled, index=False)
    second = pipeline.train(config, scrambled)
    assert second.record.threshold == first.record.threshold
    assert second.record.threshold.objective == "break_even"
    pd.testing.assert_frame_equal(
        second.leaderboard.drop(columns="fit_seconds_mean"), first.leaderboard.drop(columns="fit_seconds_mean")
    )
    assert second.metrics.roc_auc != first.metrics.roc_auc


def test_costs_on_the_test_rows_are_those_of_the_saved_test_predictions(write_config):
    config = load_config(write_config())
    result = pipeline.train(config)
    costs = result.metrics.costs.model_dump()
    test = pd.read_csv(result.run_dir / "test_predictions.csv")
    threshold = result.record.threshold.value
    expected = cost_summary(test["y_true"], test["churn_probability"].to_numpy(), threshold, config.decision)
    assert costs == pytest.approx(expected)
    churners = int(test["y_true"].sum())
    assert costs["cost_contact_nobody"] == 300 * churners
    assert costs["cost_contact_everyone"] == pytest.approx(50 * len(test) + 300 * 0.7 * churners)
    assert result.record.decision.model_dump() == {"offer_cost": 50.0, "churn_cost": 300.0, "offer_success_rate": 0.3,
                                                   "value_column": None, "value_months": None,
                                                   "offer_cost_column": None, "contact_budget": None,
                                                   "currency": None}  # fmt: skip


def test_a_model_missing_the_gate_is_saved_as_rejected_and_latest_stays(write_config):
    config = load_config(write_config())
    accepted = pipeline.train(config)
    strict = load_config(write_config({"validation": {"min_roc_auc": 0.99, "min_recall": 0.5}}))
    rejected = pipeline.train(strict)
    assert rejected.gate_missed and rejected.gate_missed[0].startswith("validation.min_roc_auc: roc_auc 0.")
    assert runs.read_latest(config.paths.models_dir) == accepted.run_id
    record = runs.read_record(rejected.run_dir)
    assert record.status == "rejected"
    assert record.validation.missed == rejected.gate_missed
    assert (rejected.run_dir / "model.joblib").is_file()


def png_size(path):
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"
    return struct.unpack(">II", header[16:24])


def test_report_has_every_plot_as_a_valid_png_and_links_only_existing_files(compared):
    _, result = compared
    report = (result.run_dir / "report.md").read_text()
    plots = PLOTS | COST_PLOT | CONTRIBUTIONS_PLOT | SURVIVAL_PLOTS  # the shipped config: costs, survival
    for name in plots:
        width, height = png_size(result.run_dir / name)
        assert 200 <= width <= 2000 and 200 <= height <= 2000, name
        assert (result.run_dir / name).stat().st_size > 5_000
    links = re.findall(r"\]\(([^)]+)\)", report)
    assert sorted(links) == sorted(plots)
    assert all((result.run_dir / link).is_file() for link in links)
    for heading in (
        "## Validation gate",
        "## Data",
        "## Model comparison",
        "## Decision threshold",
        "## Who to contact (test rows)",
        "## Why customers churn (test rows)",
        "### Reason codes of the 10 highest-risk test customers",
    ):
        assert heading in report
    assert re.search(r"\| top 20% \| \d+% \|", report)  # the gains table a retention team reads
    assert "TotalCharges | 4" in report  # missing values per column
    assert result.record.threshold.reason in report


def test_report_can_be_rebuilt_from_the_run_folder(compared):
    config, result = compared
    for name in ["report.md", *PLOTS, "contributions.png"]:
        (result.run_dir / name).unlink()
    path = pipeline.rebuild_report(config, None)
    assert path == result.run_dir / "report.md"
    assert all((result.run_dir / name).is_file() for name in [*PLOTS, "contributions.png"])
    assert json.loads((result.run_dir / "metadata.json").read_text())["run_id"] in path.read_text()


@pytest.mark.parametrize("damage", ["table changed", "unreadable record"])
def test_a_report_is_not_rebuilt_from_tables_that_are_not_the_recorded_ones(compared, damage):
    config, result = compared
    if damage == "table changed":
        with (result.run_dir / runs.THRESHOLD_CURVE).open("a") as handle:
            handle.write("0.5,0,0,0\n")
    else:  # a record without its artefact hashes or selection: unreadable
        metadata = json.loads((result.run_dir / runs.METADATA).read_text())
        del metadata["artefacts"], metadata["selection"]
        (result.run_dir / runs.METADATA).write_text(json.dumps(metadata))
    (result.run_dir / "report.md").unlink()
    with pytest.raises(ModelError, match="its report cannot be rebuilt"):
        pipeline.rebuild_report(config, None)
    assert not (result.run_dir / "report.md").exists()


@pytest.mark.slow  # a comparison on a 1,200-row sample, then a refit
def test_above_selection_rows_candidates_are_compared_on_a_sample_and_the_winner_fit_on_all(write_config):
    config = load_config(write_config({"training.selection_rows": 200}))
    result = pipeline.train(config)
    selection = result.record.selection
    assert (selection.compared_on_rows, selection.training_rows, selection.sampled) == (200, 320, True)
    curve = pd.read_csv(result.run_dir / "threshold_curve.csv")
    assert len(curve) == 99  # the threshold came from the sample's out-of-fold predictions
    report = (result.run_dir / "report.md").read_text()
    assert "compared on a stratified sample of 200 of the 320 training rows" in report
    # the selected model was fitted on all 320 training rows: its learned medians are theirs
    data = load_training_data(TELCO_SAMPLE, config.data)
    X_train = split_data(data.X, data.y, config.split)[0]
    numeric = unwrap(load_model(result.run_dir, result.record)).named_steps["preprocess"].named_transformers_["numeric"]
    np.testing.assert_allclose(
        numeric.named_steps["impute"].statistics_, X_train[["tenure", "MonthlyCharges"]].median()
    )
    unsampled = pipeline.train(load_config(write_config()))
    assert unsampled.record.selection.sampled is False


def test_the_report_reads_right_for_a_manager(compared):
    """Words for headers, the gate's values beside its limits, AUCs in the legends' terms, and the
    cost plot of the test rows the text quotes (its figures checked in the test above)."""
    _, result = compared
    report = (result.run_dir / "report.md").read_text()
    assert "| rank | model | ROC AUC (mean) | ROC AUC (std) |" in report and "roc_auc_mean" not in report
    assert "fit seconds (mean)" in report and "expected cost (out-of-fold)" in report
    gate = report.split("## Validation gate")[1].split("##")[0]
    for key in result.record.validation.criteria:
        assert f"`{key}`" in gate and "reached 0." in gate
    assert "The selected candidate has the best mean CV ROC AUC (`training.selection_metric: roc_auc`)" in report
    assert "`cost.png` plots these test-row figures, from zero" in report
    curve = pd.read_csv(result.run_dir / "threshold_curve.csv")
    assert "contacted" in curve and (curve["contacted"] == 0).any()  # the plot stops where nobody is contacted


def test_the_hazard_kinds_among_the_candidates_are_compared_and_the_lowest_cv_ibs_fitted(compared):
    _, result = compared
    survival = result.record.survival
    assert [c.name for c in survival.compared] == ["logistic_regression", "hist_gradient_boosting"]  # no forest
    assert survival.model == min(survival.compared, key=lambda c: c.cv_ibs).name
    assert all(0 < c.cv_ibs < 0.25 and 0.5 < c.cv_concordance <= 1 for c in survival.compared)
    assert survival.params["max_iter"] == (500 if survival.model == "logistic_regression" else 30)  # its params
    report = (result.run_dir / "report.md").read_text()
    assert "chosen by cross-validated integrated Brier score" in report and "| hist_gradient_boosting |" in report

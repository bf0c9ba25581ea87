"""Explanations of trained runs of every model kind: additive to the margin on the shipped data
and on a table with missing values and unseen categories, equal to shap's TreeExplainer for the
tree models and to the closed form for logistic regression, and the notebook function equal to
predict --explain through CSV and Parquet."""

import functools
import sys

import numpy as np
import pandas as pd
import pytest
import shap
from support import TELCO, without_horizons, write_quick_config

from churn import pipeline
from churn.config import load_config
from churn.data_loader import load_training_data, split_data
from churn.explain import explainers, pathshap
from churn.explain.explainers import Explain
from churn.model import load_model, unwrap

KINDS = {
    "logistic_regression": {"max_iter": 500},
    "hist_gradient_boosting": {"max_iter": 40, "max_depth": 3},
    "gradient_boosting": {"n_estimators": 30, "max_depth": 3},
    "random_forest": {"n_estimators": 15, "min_samples_leaf": 5},
}
SHIPPED = pd.read_csv(TELCO, dtype=str, keep_default_na=False).drop(columns="Churn")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One run of each kind, on the 400-row sample; a run is only read by these tests."""
    found = {}
    for name, params in KINDS.items():
        folder = tmp_path_factory.mktemp(name)
        config = load_config(write_quick_config(folder, {"model.name": name, "model.params": params}, validation={}))
        result = pipeline.train(config)
        found[name] = (config, result, load_model(result.run_dir, result.record))
    return found


def damaged(frame):
    """The first 600 rows with blanks in numbers and categories, and categories training never saw."""
    rows = frame.head(600).copy()
    rows.loc[rows.index[::7], "TotalCharges"] = ""
    rows.loc[rows.index[::11], "tenure"] = " "
    rows.loc[rows.index[::5], "InternetService"] = "Satellite"
    rows.loc[rows.index[::13], "Contract"] = ""
    rows.loc[rows.index[::17], "PaymentMethod"] = "Bitcoin"
    return rows


def margin(model, frame, kind):
    pipe = unwrap(model)
    transformed = pipe[:2].transform(frame)
    classifier = pipe[-1]
    return classifier.predict_proba(transformed)[:, 1] if kind == "random_forest" else (
        classifier.decision_function(transformed))  # fmt: skip


def contributions_of(frame):
    return frame[[c for c in frame.columns if c.startswith("contribution_") and c != "contribution_base"]]


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("rows", ["shipped", "damaged"])
def test_contributions_add_up_to_the_margin(trained, kind, rows):
    _, _, model = trained[kind]
    frame = SHIPPED if rows == "shipped" else damaged(SHIPPED)
    explained = explainers.explain(model, frame, top=3)
    total = contributions_of(explained).sum(axis=1) + explained["contribution_base"]
    assert np.abs(total.to_numpy() - margin(model, frame, kind)).max() < 1e-9
    assert list(contributions_of(explained).columns) == [f"contribution_{c}" for c in unwrap(model)[0].spec_.columns]


def test_an_unseen_category_contributes_as_the_model_scores_it(trained):
    _, _, model = trained["logistic_regression"]
    frame = damaged(SHIPPED)
    unseen = (frame["InternetService"] == "Satellite").to_numpy()
    explained = explainers.explain(model, frame)
    tables = explainers.scorer_of(model).tables
    shares = next(item for item in tables["categorical"] if item["column"] == "InternetService")
    item = next(item for item in tables["categorical"] if item["column"] == "InternetService")
    expected = -float(np.dot(item["coef"], shares["training_share"]))  # a one-hot of zeros, less its mean
    assert explained.loc[unseen, "contribution_InternetService"].to_numpy() == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("kind", ["hist_gradient_boosting", "gradient_boosting", "random_forest"])
def test_tree_models_equal_shaps_tree_explainer(trained, kind):
    _, _, model = trained[kind]
    pipe = unwrap(model)
    frame = damaged(SHIPPED)
    transformed = pipe[:2].transform(frame)
    reference = shap.TreeExplainer(pipe[-1], feature_perturbation="tree_path_dependent")
    values = np.asarray(reference.shap_values(transformed, check_additivity=False))
    values = values[..., 1] if values.ndim == 3 else values
    column_of = explainers.column_of_transformed(explainers.scorer_of(model))
    summed = np.stack([values[:, column_of == j].sum(axis=1) for j in range(column_of.max() + 1)], axis=1)
    explained = explainers.explain(model, frame)
    assert np.abs(contributions_of(explained).to_numpy() - summed).max() < 1e-9
    assert explained["contribution_base"].iloc[0] == pytest.approx(np.ravel(reference.expected_value)[-1], abs=1e-9)


def test_logistic_regression_equals_the_closed_form(trained):
    config, _, model = trained["logistic_regression"]
    pipe = unwrap(model)
    data = load_training_data(config.data.path, config.data)
    X_train = split_data(data.X, data.y, config.split)[0]
    means = np.asarray(pipe[:2].transform(X_train)).mean(axis=0)
    assert pipe.named_steps["preprocess"].training_means_ == pytest.approx(means, abs=1e-12)
    frame = damaged(SHIPPED)
    terms = (np.asarray(pipe[:2].transform(frame)) - means) * pipe[-1].coef_[0]
    names = pipe.named_steps["preprocess"].get_feature_names_out()
    columns = pipe[0].spec_.columns
    owner = [next(c for c in columns if name.split("__", 1)[1] == c or name.split("__", 1)[1].startswith(f"{c}_"))
             for name in names]  # fmt: skip
    closed = np.stack([terms[:, [o == c for o in owner]].sum(axis=1) for c in columns], axis=1)
    explained = explainers.explain(model, frame)
    assert np.abs(contributions_of(explained).to_numpy() - closed).max() < 1e-12
    base = pipe[-1].intercept_[0] + pipe[-1].coef_[0] @ means
    assert explained["contribution_base"].iloc[0] == pytest.approx(base, abs=1e-12)


def test_reason_codes_are_the_top_positive_contributions_in_order(trained):
    _, _, model = trained["hist_gradient_boosting"]
    explained = explainers.explain(model, SHIPPED.head(300), top=4)
    contributions = contributions_of(explained)
    names = [c.removeprefix("contribution_") for c in contributions.columns]
    for row in range(len(explained)):
        values = contributions.iloc[row].to_numpy()
        order = [names[j] for j in np.argsort(-values, kind="stable") if values[j] > 0][:4]
        found = [explained[f"reason_{k}"].iloc[row] for k in range(1, 5)]
        assert found[: len(order)] == order and not any(isinstance(f, str) for f in found[len(order) :])
        for k, name in enumerate(order, start=1):
            assert explained[f"reason_{k}_effect"].iloc[row] == values[names.index(name)]


@pytest.mark.parametrize("kind", ["logistic_regression", "hist_gradient_boosting"])
@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_the_notebook_function_equals_predict_explain(trained, kind, suffix, tmp_path):
    config, _, model = trained[kind]
    frame = damaged(SHIPPED)
    source = tmp_path / "customers.csv"
    frame.to_csv(source, index=False)
    output = tmp_path / f"out{suffix}"
    pipeline.predict(config, source, output, explain=Explain(3, contributions=True))
    written = pd.read_parquet(output) if suffix == ".parquet" else pd.read_csv(output, keep_default_na=False,
                                                                              na_values=[""])  # fmt: skip
    written = without_horizons(written)  # compared door by door in test_horizons_everywhere
    notebook = explainers.explain(model, frame, top=3)
    assert list(written.columns) == ["customerID", *notebook.columns]
    for column in notebook.columns:
        if notebook[column].dtype.kind == "f":
            assert np.array_equal(written[column].to_numpy(), notebook[column].to_numpy(), equal_nan=True), column
        else:
            assert written[column].astype(object).where(written[column].notna(), None).tolist() == (
                notebook[column].astype(object).where(notebook[column].notna(), None).tolist()), column  # fmt: skip


def test_a_forest_asked_for_more_rows_than_its_time_allows_is_refused_with_the_estimate(trained, tmp_path):
    config, _, _ = trained["random_forest"]
    tight = config.model_copy(update={"predict": config.predict.model_copy(update={"max_explain_seconds": 0.001})})
    source = tmp_path / "customers.csv"
    SHIPPED.to_csv(source, index=False)
    with pytest.raises(
        explainers.ExplainTooSlowError,
        match=r"explaining 7,043 rows .* would take about .* a row, "
        r"timed on 128 rows.*predict.max_explain_seconds",
    ):
        pipeline.predict(tight, source, tmp_path / "out.csv", explain=Explain(3))
    assert not (tmp_path / "out.csv").exists()
    pipeline.predict(config, source, tmp_path / "out.csv", explain=Explain(3))  # the default allows it
    assert len(pd.read_csv(tmp_path / "out.csv")) == len(SHIPPED)


def test_a_forest_without_numba_explains_to_the_same_bits(trained, monkeypatch):
    _, _, model = trained["random_forest"]
    frame = damaged(SHIPPED).head(50)
    compiled = explainers.explain(model, frame)
    monkeypatch.setitem(sys.modules, "numba", None)  # import numba now raises ImportError
    monkeypatch.setattr(pathshap, "_compiled_block", functools.cache(pathshap._compiled_block.__wrapped__))
    plain = explainers.explain(model, frame)
    assert not explainers.explainer_for(explainers.scorer_of(model)).walk.compiled
    pd.testing.assert_frame_equal(plain, compiled, check_exact=True)


@pytest.mark.parametrize("kind", list(KINDS))
def test_the_report_shows_the_global_view_in_the_input_columns_own_names(trained, kind):
    _, result, _ = trained[kind]
    report = (result.run_dir / "report.md").read_text()
    why = report[report.index("## Why customers churn") :]
    columns = result.record.features.numeric_features + result.record.features.categorical_features
    for column in columns:
        assert f"\n| {column} |" in why, column
    assert "__" not in why and "categorical_" not in why and "numeric_" not in why
    units = "probability of churn" if kind == "random_forest" else "log-odds of churn"
    assert f"mean \\|contribution\\| ({units})" in why
    risky = why[why.index("### Reason codes of the 10 highest-risk test customers") :].splitlines()
    rows = [line for line in risky if line.startswith("| ") and "---" not in line][1:]
    explained = pd.read_csv(result.run_dir / "test_explanations.csv", dtype={"customerID": str})
    riskiest = explained.sort_values("churn_probability", ascending=False, kind="stable").head(10)
    assert [row.split(" | ")[0].removeprefix("| ") for row in rows] == riskiest["customerID"].tolist()
    assert (result.run_dir / "contributions.png").is_file() and "feature_effects" not in report
    assert result.record.explanations.rows == len(explained) == min(1000, result.record.split.test_rows)

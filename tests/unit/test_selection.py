import itertools
import logging
import re

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from churn.config import DecisionConfig, load_config
from churn.errors import ConfigError, DataError
from churn.training import selection


def config_with(write_config, candidates, **changes):
    return load_config(write_config({"training.candidates": candidates, **changes}))


def test_build_candidates_makes_one_estimator_per_setting(write_config):
    config = config_with(
        write_config,
        [
            {"name": "logistic_regression", "search": {"method": "grid", "space": {"C": [0.1, 1.0, 10.0]}}},
            {"name": "random_forest", "search": {"method": "random", "n_iter": 2, "space": {"max_depth": [2, 3, 4]}}},
            {"name": "random_forest", "search": {"method": "random", "n_iter": 9, "space": {"max_depth": [2, 3]}}},
        ],
    )
    built = selection.build_candidates(config)
    assert [estimator.C for estimator in built[0][1]] == [0.1, 1.0, 10.0]
    assert len(built[1][1]) == 2
    assert len(built[2][1]) == 2  # n_iter is capped at the size of the space


@pytest.mark.parametrize(
    ("candidate", "message"),
    [
        (
            {"name": "random_forest", "params": {"n_trees": 3}},
            r"training\.candidates\[1\]\.params: n_trees not accepted",
        ),
        (
            {"name": "random_forest", "search": {"space": {"depth": [1, 2]}}},
            r"training\.candidates\[1\]\.params: depth not accepted",
        ),
        (
            {"name": "random_forest", "search": {"space": {"max_depth": ["deep"]}}},
            r"training\.candidates\[1\]\.params: The 'max_depth' parameter",
        ),
        (
            {"name": "random_forest", "params": {"max_depth": 2}, "search": {"space": {"max_depth": [1, 2]}}},
            r"search\.space\.max_depth is also fixed in params",
        ),
    ],
)
def test_a_bad_candidate_is_a_config_error_naming_it(write_config, candidate, message):
    config = config_with(write_config, [{"name": "logistic_regression"}, candidate])
    with pytest.raises(ConfigError, match=message):
        selection.build_candidates(config)


def identity_pipeline(estimator):
    return Pipeline([("preprocess", FunctionTransformer()), ("classifier", estimator)])


def separable(rows=120, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"a": rng.normal(size=rows), "noise": rng.normal(size=rows)})
    y = pd.Series((X["a"] + 0.5 * rng.normal(size=rows) > 0).astype(int))
    return X, y


def test_score_setting_gives_out_of_fold_predictions_for_every_row():
    X, y = separable()
    splits = selection.fold_splits(y, 4, seed=0)
    score = selection.score_setting(
        identity_pipeline(LogisticRegression()), selection.Folds(X, y, splits, 0.5), "lr", "lr"
    )
    assert not np.isnan(score.oof_probabilities).any()
    assert len(score.fold_scores["roc_auc"]) == 4 and len(score.fit_seconds) == 4
    assert score.mean("roc_auc") > 0.8


def test_fold_splits_need_enough_rows_per_class():
    with pytest.raises(DataError, match="cv_folds is 5 but the smaller class has only 2"):
        selection.fold_splits(pd.Series([1, 1] + [0] * 8), 5, seed=0)


def test_compare_candidates_orders_the_leaderboard_by_the_selection_metric(write_config, monkeypatch):
    config = config_with(
        write_config,
        [
            {"name": "logistic_regression", "params": {"C": 0.0001}},  # nearly constant: weak ranking
            {"name": "logistic_regression", "params": {"C": 1.0}},
        ],
    )
    X, y = separable(rows=200)
    comparison = selection.compare_candidates(config, identity_pipeline, X, y, 0.5)
    assert [score.label for score in comparison.tried] == ["logistic_regression [1/1]"] * 2
    assert [score.setting for score in comparison.tried] == [{"C": 0.0001}, {"C": 1.0}]
    board = selection.leaderboard(comparison.best)
    assert board["roc_auc_mean"].is_monotonic_decreasing
    assert board["rank"].tolist() == [1, 2] and board["selected"].tolist() == [True, False]
    assert set(board.columns) >= {"roc_auc_std", "pr_auc_mean", "pr_auc_std", "f1_mean", "f1_std", "fit_seconds_mean"}


def test_compare_candidates_logs_candidate_setting_fold_and_time_since_the_start(write_config, caplog, monkeypatch):
    config = config_with(write_config, [{"name": "logistic_regression"}, {"name": "logistic_regression"}])
    X, y = separable(rows=200)
    ticks = itertools.count()  # a clock that moves one second per reading, so elapsed times differ
    monkeypatch.setattr(selection.time, "perf_counter", lambda: float(next(ticks)))
    with caplog.at_level(logging.INFO, logger="churn.training.selection"):
        selection.compare_candidates(config, identity_pipeline, X, y, 0.5)
    pattern = r"logistic_regression \[1/1\] fold (\d)/(\d): ROC AUC [\d.]+ \(fit [\d.]+ s, elapsed ([\d.]+) s\)"
    lines = [re.fullmatch(pattern, record.getMessage()) for record in caplog.records if "fold" in record.getMessage()]
    folds = config.training.cv_folds
    assert all(lines) and [int(line[1]) for line in lines] == list(range(1, folds + 1)) * 2
    elapsed = [float(line[3]) for line in lines]
    assert elapsed == sorted(elapsed)  # one clock for the whole comparison: it never starts again


def test_choose_threshold_fixed_max_f1_and_break_even():
    y = pd.Series([0, 0, 0, 0, 1, 1])
    oof = np.array([0.1, 0.2, 0.3, 0.6, 0.35, 0.9])
    fixed = selection.choose_threshold(y, oof, 0.5, DecisionConfig())
    assert fixed.threshold == 0.5 and fixed.objective == "fixed"
    best_f1 = selection.choose_threshold(y, oof, "auto", DecisionConfig())
    assert best_f1.objective == "max_f1" and 0.3 < best_f1.threshold <= 0.35  # catches both churners, one FP
    # an offer that costs a third of what it saves: worth it from p = 1/3 (rows 0.35, 0.6 and 0.9)
    cheap = DecisionConfig(offer_cost=10.0, churn_cost=60.0, offer_success_rate=0.5)
    cheap_offers = selection.choose_threshold(y, oof, "auto", cheap)
    assert cheap_offers.objective == "break_even" and cheap_offers.threshold == pytest.approx(1 / 3)
    # hand-computed: 3 offers, and both churners contacted, each kept with probability 0.5
    assert cheap_offers.oof_value == pytest.approx(3 * 10 + 2 * 0.5 * 60)
    # an offer dearer than the churn it prevents: contact nobody (the threshold is 1)
    dear = DecisionConfig(offer_cost=100.0, churn_cost=1.0, offer_success_rate=1.0)
    dear_offers = selection.choose_threshold(y, oof, "auto", dear)
    assert dear_offers.threshold == 1.0 and dear_offers.oof_value == 2.0  # both churners lost, no offer


def test_selection_sample_is_stratified_repeatable_and_only_above_the_limit():
    X, y = separable(rows=1000, seed=3)
    same_X, same_y = selection.selection_sample(X, y, 1000, seed=0)
    assert same_X is X and same_y is y
    assert selection.selection_sample(X, y, None, seed=0)[1] is y
    X_sample, y_sample = selection.selection_sample(X, y, 200, seed=0)
    assert len(X_sample) == len(y_sample) == 200 and (X_sample.index == y_sample.index).all()
    assert abs(y_sample.mean() - y.mean()) < 0.01  # stratified: the class balance is kept
    assert selection.selection_sample(X, y, 200, seed=0)[1].index.equals(y_sample.index)


@pytest.mark.slow  # the comparison twice, on one process and on several
def test_the_comparison_is_the_same_on_one_process_or_several(write_config):
    """Folds run in loky processes with one thread each; the scores and out-of-fold predictions
    are those of one process, bit for bit."""
    candidates = [{"name": "hist_gradient_boosting", "params": {"max_iter": 30}},
                  {"name": "logistic_regression", "params": {"C": 0.5}}]  # fmt: skip
    X, y = separable(rows=300)
    found = {}
    for jobs in (1, 2):
        config = config_with(write_config, candidates)
        config = config.model_copy(update={"training": config.training.model_copy(update={"n_jobs": jobs})})
        found[jobs] = selection.compare_candidates(config, identity_pipeline, X, y, 0.5)
    for one, two in zip(found[1].tried, found[2].tried, strict=True):
        assert one.fold_scores == two.fold_scores and one.label == two.label
        assert np.array_equal(one.oof_probabilities, two.oof_probabilities)


def test_expected_cost_selects_the_candidate_whose_out_of_fold_cost_is_lowest(write_config):
    candidates = [{"name": "logistic_regression", "params": {"C": 0.0001}},  # a weak ranking: costs more
                  {"name": "logistic_regression", "params": {"C": 1.0}}]  # fmt: skip
    costs = {"decision.offer_cost": 10, "decision.churn_cost": 100, "decision.offer_success_rate": 0.5}
    config = config_with(write_config, candidates, **costs, **{"training.selection_metric": "expected_cost"})
    X, y = separable(rows=300)
    comparison = selection.compare_candidates(config, identity_pipeline, X, y, 0.5)
    costs_found = [score.oof_cost for score in comparison.tried]
    assert comparison.best[0].oof_cost == min(costs_found) and comparison.best[0].setting == {"C": 1.0}
    for score in comparison.tried:  # the cost at the threshold the threshold choice would pick
        choice = selection.choose_threshold(y, score.oof_probabilities, "auto", config.decision)
        assert score.oof_cost == choice.oof_value
    board = selection.leaderboard(comparison.best)
    assert board["oof_expected_cost"].is_monotonic_increasing


def test_expected_cost_selection_needs_the_decision_costs(write_config):
    with pytest.raises(ConfigError, match="training.selection_metric expected_cost needs decision.offer_cost"):
        load_config(write_config({"training.selection_metric": "expected_cost", "decision": {}}))

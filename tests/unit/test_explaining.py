"""Explanations by hand: a two-feature logistic model, a small tree, the per-leaf tables and the
quadrature walk against brute-force Shapley values, reason codes (order, ties, fewer than K) and the time check."""

import functools
import itertools
import math
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pytest
from support import brute_force_shapley

from churn.cleaning import FeatureTable
from churn.codes import Coded
from churn.errors import ConfigError, ModelError
from churn.explain import explainers, pathshap, treeshap
from churn.explain.explainers import Explain, LinearExplainer, reason_columns, value_text
from churn.scoring.scorers import LinearScorer
from churn.service.errors import ClientError
from churn.service.parsing import explain_count


def linear_tables(**changes):
    """tenure (scaled) and plan (two categories): a two-feature logistic regression by hand."""
    tables = {
        "kind": "logistic_regression",
        "threshold": 0.5,
        "features": {"numeric": ["tenure"], "categorical": ["plan"], "bool_spelling": {}, "missing_values": []},
        "intercept": -1.0,
        "numeric": [
            {"column": "tenure", "fill": 10.0, "mean": 20.0, "scale": 10.0, "coef": -0.5, "training_mean": 0.1}
        ],  # fmt: skip
        "categorical": [
            {
                "column": "plan",
                "categories": ["basic", "pro"],
                "fill": "basic",
                "coef": [0.8, -0.4],
                "training_share": [0.75, 0.25],
            }
        ],  # fmt: skip
    }
    return tables | changes


def features(tenure, plan_codes, plan_labels=("basic", "pro")):
    return FeatureTable(
        {"tenure": np.asarray(tenure, dtype="float64")},
        {"plan": Coded(np.asarray(plan_codes), tuple(plan_labels))},
        len(tenure),
    )


def test_a_two_feature_logistic_model_by_hand():
    scorer = LinearScorer(linear_tables())
    explainer = LinearExplainer(scorer)
    # base: intercept + coef x training mean + expected plan weight = -1 - 0.05 + (0.6 - 0.1)
    assert explainer.base == pytest.approx(-0.55, abs=1e-15)
    rows = features([40.0, np.nan, 20.0], [0, 1, 2], ("pro", "basic", "gold"))  # pro, basic, unseen gold
    found = explainer.contributions(rows)
    # tenure 40 -> scaled 2, -0.5 x (2 - 0.1); missing -> fill 10 -> -1; 20 -> 0
    assert found[:, 0] == pytest.approx([-0.95, 0.55, 0.05], abs=1e-15)
    # plan pro: -0.4 - 0.5; basic: 0.8 - 0.5; unseen scores no weight: 0 - 0.5
    assert found[:, 1] == pytest.approx([-0.9, 0.3, -0.5], abs=1e-15)
    margins = np.log(scorer.score_clean(rows) / (1 - scorer.score_clean(rows)))
    assert explainer.base + found.sum(axis=1) == pytest.approx(margins, abs=1e-12)


def test_lookup_tables_saved_before_training_means_are_refused_with_retrain():
    tables = linear_tables()
    del tables["numeric"][0]["training_mean"]
    with pytest.raises(ModelError, match="retrain it"):
        LinearExplainer(LinearScorer(tables))


def stump(left_value, right_value, left_cover, right_cover):
    """x0 <= 0.5 goes left."""
    return treeshap.Tree(
        feature=np.array([0, -1, -1]), threshold=np.array([0.5, 0, 0]), left=np.array([1, -1, -1]),
        right=np.array([2, -1, -1]), leaf=np.array([False, True, True]),
        value=np.array([0.0, left_value, right_value]), cover=np.array([left_cover + right_cover, left_cover,
                                                                        right_cover], dtype="float64"),
        float32=False,
    )  # fmt: skip


EXACT_KINDS = [treeshap.NodeTables, treeshap.LeafTables, pathshap.PathShap,
               functools.partial(pathshap.PathShap, compiled=False)]  # fmt: skip


@pytest.mark.parametrize("kind", EXACT_KINDS)
def test_a_stump_by_hand(kind):
    tables = kind([stump(1.0, 3.0, 3, 1)], constant=0.25, column_of=np.arange(2), columns=2)
    assert tables.base == pytest.approx(0.25 + (1 * 3 + 3 * 1) / 4)  # constant + expected leaf value
    found = tables.contributions(np.array([[0.0, 9.0], [1.0, 9.0]]))
    assert found == pytest.approx(np.array([[1.0 - 1.5, 0.0], [3.0 - 1.5, 0.0]]))


def small_tree():
    """Depth 2, two features, x0 used twice on one path: covers 10 = 6 + 4, 6 = 2 + 4, 4 = 1 + 3."""
    return treeshap.Tree(
        feature=np.array([0, 1, 0, -1, -1, -1, -1]),
        threshold=np.array([0.5, 0.5, 1.5, 0, 0, 0, 0]),
        left=np.array([1, 3, 5, -1, -1, -1, -1]),
        right=np.array([2, 4, 6, -1, -1, -1, -1]),
        leaf=np.array([False, False, False, True, True, True, True]),
        value=np.array([0, 0, 0, 1.0, -2.0, 4.0, 0.5]),
        cover=np.array([10, 6, 4, 2, 4, 1, 3], dtype="float64"),
        float32=False,
    )


@pytest.mark.parametrize("kind", EXACT_KINDS)
@pytest.mark.parametrize("row", [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [2.0, 1.0], [0.5, 0.5]])
def test_a_small_tree_equals_brute_force_shapley_values(row, kind):
    tree = small_tree()
    tables = kind([tree], constant=0.0, column_of=np.arange(3), columns=3)
    found = tables.contributions(np.array([row + [7.0]]))[0]
    assert found == pytest.approx(np.append(brute_force_shapley(tree, row, 2), 0.0), abs=1e-12)
    assert tables.base + found.sum() == pytest.approx(tree.value[tree.leaf_of(np.array(row))], abs=1e-12)


def test_a_leaf_table_is_the_shapley_value_of_its_path_game():
    zeros = [0.3, 0.6, 0.5]
    table = treeshap.leaf_table(2.0, zeros)
    for pattern in range(8):
        ones = [(pattern >> j) & 1 for j in range(3)]

        def worth(known, ones=ones):
            return 2.0 * math.prod(ones[d] if d in known else zeros[d] for d in range(3))

        for j in range(3):
            others = [d for d in range(3) if d != j]
            expected = sum(
                math.factorial(len(s)) * math.factorial(2 - len(s)) / 6 * (worth({*s, j}) - worth(set(s)))
                for size in range(3) for s in itertools.combinations(others, size)
            )  # fmt: skip
            assert table[pattern, j] == pytest.approx(expected, abs=1e-15)


def test_reason_codes_are_the_largest_positive_contributions_ties_to_the_column_listed_first():
    contributions = np.array([
        [0.2, 0.9, -0.1, 0.2],  # tie of 0.2: column a before d
        [-0.1, -0.2, -0.3, 0.0],  # nothing pushes towards churn: no reasons (0 is no push)
        [0.0, 0.0, 0.4, -1.0],  # one reason only
    ])  # fmt: skip
    table = FeatureTable({"a": np.array([1.0, np.nan, 2.5]), "b": np.array([3.0, 4.0, 5.0])},
                         {"c": Coded(np.array([0, 1, -1]), ("x", "y")), "d": Coded(np.array([1, 0, 0]), ("p", "q"))},
                         3)  # fmt: skip
    found = {k: v.to_pylist() for k, v in reason_columns(contributions, ["a", "b", "c", "d"], table, 3).items()}
    assert found["reason_1"] == ["b", None, "c"] and found["reason_1_value"] == ["3", None, None]  # c missing
    assert found["reason_1_effect"] == [0.9, None, 0.4]
    assert found["reason_2"] == ["a", None, None] and found["reason_2_value"] == ["1", None, None]
    assert found["reason_3"] == ["d", None, None] and found["reason_3_value"] == ["q", None, None]
    assert found["reason_3_effect"] == [0.2, None, None]


def test_values_are_shown_as_cleaning_left_them():
    coded = Coded(np.array([1, -1, 0, 0]), ("Month-to-month", "Two year"))
    table = FeatureTable({"n": np.array([29.85, 70.0, np.nan, 1e20])}, {"c": coded}, 4)
    assert value_text(table, "n").to_pylist() == ["29.85", "70", None, "1e+20"]
    assert value_text(table, "c").to_pylist() == ["Two year", None, "Month-to-month", "Month-to-month"]


def test_contributions_columns_follow_the_reasons_and_end_with_the_base():
    explainer = LinearExplainer(LinearScorer(linear_tables()))
    columns = explainers.explanation_columns(explainer, features([40.0], [0]), Explain(2, contributions=True))
    reasons = [f"reason_{k}{part}" for k in (1, 2) for part in ("", "_value", "_effect")]
    assert list(columns) == [*reasons, "contribution_tenure", "contribution_plan", "contribution_base"]
    assert columns["contribution_base"][0] == explainer.base


def test_more_reason_codes_than_input_columns_names_the_option():
    explainer = LinearExplainer(LinearScorer(linear_tables()))
    with pytest.raises(ConfigError, match=r"--explain 3: this run has 2 input columns"):
        explainers.check_top(3, explainer, "--explain")


class SlowExplainer:
    columns, margin, base, slow = ("a",), "probability", 0.0, True

    def __init__(self, seconds_per_row):
        self.seconds_per_row = seconds_per_row

    def contributions(self, features):
        import time

        time.sleep(self.seconds_per_row * len(features))
        return np.zeros((len(features), 1))


def test_a_slow_explainer_is_timed_and_refused_with_its_estimate():
    probe = FeatureTable({"a": np.zeros(100)}, {}, 100)
    explain = Explain(3, max_seconds=60.0)
    with pytest.raises(explainers.ExplainTooSlowError, match=r"about \d+ min .*over predict.max_explain_seconds"):
        explainers.check_time(SlowExplainer(0.005), probe, 1_000_000, explain, "big.csv")
    explainers.check_time(SlowExplainer(0.005), probe, 100, explain, "small.csv")  # about 0.5 s: allowed


def test_an_explainer_on_several_threads_is_estimated_for_them(caplog):
    probe = FeatureTable({"a": np.zeros(20)}, {}, 20)
    threaded = SlowExplainer(0.005)
    threaded.threads = 4
    explain = Explain(3, max_seconds=20.0)
    # about 0.005 s x 10,000 rows = 50 s on one thread: refused; over 4 threads about 12.5 s: allowed
    with pytest.raises(explainers.ExplainTooSlowError, match=r"ms a row, timed on 20 rows here\), over"):
        explainers.check_time(SlowExplainer(0.005), probe, 10_000, explain, "one.csv")
    with caplog.at_level("WARNING"):
        explainers.check_time(threaded, probe, 10_000, explain, "four.csv")
    assert "on 4 threads" in caplog.text


@pytest.mark.parametrize("value", [-1, 2.5, True, "3", None, [1], 20])
def test_explain_in_a_json_body_must_be_a_small_whole_number(value):
    if value is None:
        assert explain_count(value, 19, '"explain"') == 0
        return
    with pytest.raises(ClientError) as raised:
        explain_count(value, 19, '"explain"')
    assert raised.value.status == 422 and raised.value.field == "explain"


def test_explain_in_the_query_is_text():
    assert explain_count("3", 19, "query parameter explain") == 3
    with pytest.raises(ClientError):
        explain_count("three", 19, "query parameter explain")


def test_an_arrow_table_of_reasons_has_fixed_types_even_when_all_missing():
    table = FeatureTable({"a": np.array([1.0])}, {}, 1)
    found = reason_columns(np.array([[-1.0]]), ["a"], table, 1)
    assert found["reason_1"].type == pa.string() and found["reason_1_value"].type == pa.string()
    assert found["reason_1_effect"].type == pa.float64() and found["reason_1"].null_count == 1


def test_points_of_probability_are_additive_shares_that_add_up_to_the_gap():
    rng = np.random.default_rng(5)
    explainer = SimpleNamespace(margin="log-odds", base=-1.2)
    contributions = rng.normal(0, 1.5, (200, 6))
    contributions[0] = [1e-12, -1e-12, 0, 0, 0, 0]  # margin at the base: the limit, the logistic slope
    margin = explainer.base + contributions.sum(axis=1)
    probabilities = 1 / (1 + np.exp(-margin))
    points = explainers.probability_points(explainer, probabilities)[:, None] * contributions
    gap = 100 * (probabilities - 1 / (1 + np.exp(-explainer.base)))
    np.testing.assert_allclose(points.sum(axis=1), gap, rtol=0, atol=1e-9)
    assert np.all(np.sign(points) == np.sign(contributions))  # a push towards churn stays one
    forest = SimpleNamespace(margin="probability", base=0.26)
    assert explainers.probability_points(forest, probabilities[:3]).tolist() == [100.0] * 3


def test_reasons_in_words_read_as_a_sentence():
    columns = {
        "reason_1": pa.array(["Contract", None]),
        "reason_1_value": pa.array(["Month-to-month", None]),
        "reason_1_effect": pa.array([0.5, None], pa.float64()),
    }
    words = explainers.reason_words(columns, 1, np.array([18.0, 20.0]))
    assert words["reason_1"].to_pylist() == ["Contract is Month-to-month: +9.0 points of churn probability", None]

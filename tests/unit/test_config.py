import io
import json
from pathlib import Path

import pytest
from pydantic import ValidationError
from support import REPO

from churn.config import Config, load_config, write_schema
from churn.errors import ConfigError


def test_load_config_reads_the_shipped_config_with_paths_beside_it():
    config = load_config(Path(__file__).resolve().parents[2] / "config.yaml")
    assert config.data.target == "Churn"
    assert config.data.positive_label == "Yes"
    assert config.data.id_column == "customerID"
    assert "TotalCharges" in config.data.numeric_features
    assert config.data.path.is_absolute() and config.data.path.is_file()
    assert config.preprocessing.fill_values == {"TotalCharges": 0.0}
    assert config.model.threshold == "auto"
    assert [c.name for c in config.candidates()] == ["logistic_regression", "random_forest", "hist_gradient_boosting"]


def test_relative_paths_resolve_against_the_config_folder(tmp_path, write_config):
    path = write_config({"data.path": "tables/x.csv"})
    config = load_config(path)
    assert config.data.path == tmp_path / "tables" / "x.csv"
    assert config.paths.models_dir == tmp_path / "models"


def test_config_is_deeply_immutable(write_config):
    config = load_config(write_config({"training.candidates": LIGHT_CANDIDATES}))
    with pytest.raises(ValidationError, match="frozen"):
        config.split.test_size = 0.5  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.model.params["max_iter"] = 5  # type: ignore[index]
    with pytest.raises(TypeError):
        config.preprocessing.fill_values["TotalCharges"] = 1.0  # type: ignore[index]
    with pytest.raises(TypeError):
        config.training.candidates[1].search.space["max_depth"] = (9,)  # type: ignore[index,union-attr]
    assert isinstance(config.data.numeric_features, tuple) and isinstance(config.training.candidates, tuple)


def test_the_json_schema_in_the_repository_is_the_one_the_code_gives():
    written = json.loads((REPO / "config.schema.json").read_text(encoding="utf-8"))
    buffer = io.StringIO()
    write_schema(buffer)
    assert written == json.loads(buffer.getvalue()), "regenerate: python -m churn.config > config.schema.json"
    assert (REPO / "config.yaml").read_text().splitlines()[0] == "# yaml-language-server: $schema=config.schema.json"
    assert set(written["properties"]) == set(Config.model_fields)
    assert written["additionalProperties"] is False


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"split.tets_size": 0.2}, r"split\.tets_size is not a known key"),
        ({"modle": {}}, r"modle is not a known key"),
        ({"split.test_size": 1.5}, r"split\.test_size must be in \(0\.0, 1\.0\), got 1\.5"),
        ({"split.test_size": "big"}, r"split\.test_size must be a number, got 'big'"),
        ({"split.test_size": True}, r"split\.test_size must be"),
        ({"split.random_state": -1}, r"split\.random_state must be at least 0, got -1"),
        ({"split.random_state": "7"}, r"split\.random_state must be an integer, got '7'"),
        ({"training.cv_folds": 1}, r"training\.cv_folds must be at least 2, got 1"),
        ({"model.threshold": 0}, r"model\.threshold must be a probability between 0 and 1 \(exclusive\) or auto"),
        ({"model.threshold": "Auto"}, r"model\.threshold must be .* or auto, got 'Auto'"),
        ({"preprocessing.scale_numeric": "yes"}, r"preprocessing\.scale_numeric must be true or false"),
        ({"data.max_unparsed_share": 2}, r"data\.max_unparsed_share must be in \[0\.0, 1\.0\], got 2"),
        ({"serve.max_rows": 0}, r"serve\.max_rows must be at least 1"),
        ({"model.name": "xgboost"}, r"model\.name must be one of logistic_regression"),
        ({"model.params": [1, 2]}, r"model\.params must be a mapping"),
        ({"data.target": None}, r"data\.target is missing"),
        ({"data.numeric_features": "tenure"}, r"data\.numeric_features must be a list"),
        ({"data.numeric_features": ["tenure", "tenure"]}, r"lists tenure more than once"),
        ({"data.categorical_features": ["gender", "tenure"]}, r"repeats tenure from data\.numeric_features"),
        ({"data.target": "gender"}, r"data\.target 'gender' is also listed as a feature"),
        ({"data.id_column": "tenure"}, r"data\.id_column 'tenure' is also listed as a feature"),
        ({"data.drop_columns": ["tenure"]}, r"data\.drop_columns names feature columns tenure"),
        ({"data.numeric_features": [], "data.categorical_features": []}, r"are both empty"),
        ({"preprocessing.fill_values": {"gender": 0}}, r"fill_values names 'gender'"),
        ({"preprocessing.numeric_impute": "mode"}, r"numeric_impute must be one of median, mean"),
        ({"data.positive_label": [1]}, r"data\.positive_label must be"),
    ],
)
def test_invalid_config_is_an_error_naming_the_key(write_config, changes, message):
    with pytest.raises(ConfigError, match=message):
        load_config(write_config(changes))


def test_missing_data_section_is_an_error(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("split: {test_size: 0.2}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="data is missing"):
        load_config(path)


def test_missing_config_file_is_an_error_naming_it(tmp_path):
    with pytest.raises(ConfigError, match=r"nope\.yaml: config file not found"):
        load_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("data: [unclosed\n", "is not valid YAML at line"),
        ("- just\n- a list\n", "must hold a YAML mapping"),
        ("", "must hold a YAML mapping"),
        ("data: !!python/object/apply:os.system ['true']\n", "is not valid YAML"),
    ],
)
def test_malformed_yaml_is_an_error(tmp_path, text, message):
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_config(path)


@pytest.mark.parametrize("label", ["Yes", "yes", 1, True])
def test_positive_label_may_be_any_scalar(write_config, label):
    assert load_config(write_config({"data.positive_label": label})).data.positive_label == label


def test_optional_sections_take_defaults(write_config, delete):
    config = load_config(write_config({"preprocessing": delete, "split": delete, "model": delete}))
    assert config.split.test_size == 0.2
    assert config.model.name == "logistic_regression"
    assert config.preprocessing.numeric_impute == "median"


def test_id_column_may_be_null(write_config):
    assert load_config(write_config({"data.id_column": None})).data.id_column is None


LIGHT_CANDIDATES = [
    {"name": "logistic_regression", "params": {"max_iter": 200}},
    {
        "name": "random_forest",
        "params": {"n_estimators": 20},
        "search": {"method": "random", "n_iter": 2, "space": {"max_depth": [3, 5]}},
    },
]


def test_candidates_search_decision_and_validation_are_parsed(write_config):
    config = load_config(
        write_config(
            {
                "training.candidates": LIGHT_CANDIDATES,
                "training.selection_metric": "pr_auc",
                "validation": {"min_roc_auc": 0.7, "max_brier": 0.3},
            }
        )
    )
    first, second = config.candidates()
    assert first.name == "logistic_regression" and first.search is None
    assert second.search.method == "random" and second.search.settings_to_draw == 2
    assert second.search.space == {"max_depth": (3, 5)}
    assert second.where == "training.candidates[1]"
    assert config.training.selection_metric == "pr_auc"
    decision = config.decision
    assert (decision.offer_cost, decision.churn_cost, decision.offer_success_rate) == (50, 300, 0.3)
    assert config.validation.criteria == {"min_roc_auc": 0.7, "max_brier": 0.3}


def test_without_candidates_the_model_section_is_the_only_candidate(write_config):
    config = load_config(write_config({"model.name": "random_forest", "model.params": {"n_estimators": 5}}))
    (only,) = config.candidates()
    assert only.name == "random_forest" and only.params == {"n_estimators": 5} and only.where == "model"


@pytest.mark.parametrize("threshold", ["auto", 0.3])
def test_threshold_is_a_probability_or_auto(write_config, threshold):
    assert load_config(write_config({"model.threshold": threshold})).model.threshold == threshold


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"model.threshold": "best"}, r"model\.threshold must be a probability between 0 and 1 .* or auto"),
        ({"training.candidates": [{"name": "svm"}]}, r"training\.candidates\[0\]\.name must be one of"),
        (
            {"training.candidates": [{"name": "random_forest", "parms": {}}]},
            r"candidates\[0\]\.parms is not a known key",
        ),
        ({"training.candidates": ["random_forest"]}, r"candidates\[0\] must be a mapping"),
        (
            {"training.candidates": [{"name": "random_forest", "search": {"method": "bayes", "space": {"a": [1]}}}]},
            r"candidates\[0\]\.search\.method must be one of grid, random",
        ),
        (
            {"training.candidates": [{"name": "random_forest", "search": {"space": {"max_depth": []}}}]},
            r"search\.space max_depth must be a non-empty list",
        ),
        ({"training.selection_metric": "accuracy"}, r"training\.selection_metric must be one of roc_auc, pr_auc, f1"),
        (
            {"decision": {"cost_false_positive": 50, "cost_false_negative": 300}},
            r"decision\.cost_false_positive is no longer used: .*decision\.offer_cost .*decision\.churn_cost "
            r".*decision\.offer_success_rate",
        ),
        (
            {"decision": {"offer_cost": 5}},
            r"decision\.offer_cost decision\.churn_cost and decision\.offer_success_rate",
        ),
        ({"decision": {"offer_cost": -5, "churn_cost": 5, "offer_success_rate": 0.3}}, r"offer_cost must be greater"),
        ({"decision": {"offer_cost": 5, "churn_cost": 5, "offer_success_rate": 1.3}}, r"offer_success_rate must be in"),
        (
            {
                "training.candidates": [
                    {"name": "random_forest", "search": {"method": "grid", "n_iter": 3, "space": {"max_depth": [3]}}}
                ]
            },
            r"candidates\[0\]\.search\.n_iter applies to method: random only",
        ),
        ({"validation": {"min_auc": 0.8}}, r"validation\.min_auc is not a known key"),
        ({"validation": {"min_recall": 1.5}}, r"validation\.min_recall must be in \[0\.0, 1\.0\]"),
    ],
)
def test_invalid_selection_settings_are_errors_naming_the_key(write_config, changes, message):
    with pytest.raises(ConfigError, match=message):
        load_config(write_config(changes))

"""The one missing-column check: every missing column named, likely causes, the door's remedy."""

import pytest

from churn.errors import DataError
from churn.io.columns import SCORING_REMEDY, TRAINING_REMEDY, require_columns


def test_every_missing_column_is_named_with_the_source_and_the_remedy(tmp_path):
    with pytest.raises(DataError, match=r"x\.csv: missing required column\(s\) b, d; add them"):
        require_columns(["a", "c"], ["a", "b", "c", "d"], tmp_path / "x.csv", TRAINING_REMEDY)


def test_nothing_is_raised_when_every_column_is_there():
    require_columns(["a", "b", "c"], ["c", "a"], "t.csv", TRAINING_REMEDY)


def test_a_header_split_on_another_delimiter_is_pointed_out():
    with pytest.raises(DataError, match="one column holding semicolons: is the file separated by semicolons"):
        require_columns(["customerID;tenure;Contract"], ["tenure", "Contract"], "t.csv", SCORING_REMEDY)


def test_other_spellings_of_a_missing_column_are_suggested():
    with pytest.raises(DataError, match=r"the file has 'monthlycharges' for MonthlyCharges, 'Contrac' for Contract"):
        require_columns(["monthlycharges", "Contrac", "tenure"], ["MonthlyCharges", "Contract", "tenure"], None,
                        SCORING_REMEDY)  # fmt: skip


def test_scoring_says_the_run_decides_not_the_config():
    with pytest.raises(DataError, match="the run was trained with them: send them, or retrain") as raised:
        require_columns(["a"], ["a", "b"], None, SCORING_REMEDY)
    assert "config" not in str(raised.value)

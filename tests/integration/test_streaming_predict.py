"""Chunked predict against the straightforward way (whole file, the saved pipeline's predict_proba)."""

import gzip
import json
import logging

import numpy as np
import pandas as pd
import pytest
from support import TELCO_SAMPLE, trained_copy, write_quick_config

from churn import pipeline
from churn.config import MODEL_NAMES, load_config
from churn.errors import DataError, ModelError
from churn.model import load_model
from churn.progress import RowProgress

FAST_PARAMS = {
    "logistic_regression": {"max_iter": 500},
    "random_forest": {"n_estimators": 20, "min_samples_leaf": 3},
    "hist_gradient_boosting": {"max_iter": 30},
    "gradient_boosting": {"n_estimators": 20},
}


@pytest.fixture
def scoring_file(tmp_path):
    """The sample without its target, with unseen categories, blanks and text in numbers."""
    frame = pd.read_csv(TELCO_SAMPLE, dtype=str, keep_default_na=False).drop(columns=["Churn"])
    frame.loc[0, "Contract"] = "Ten year"
    frame.loc[1, "PaymentMethod"] = ""
    frame.loc[2, "TotalCharges"] = "  "
    frame.loc[3, "tenure"] = "n/a"
    frame.loc[4, "SeniorCitizen"] = "1.0"
    frame.loc[5, "MonthlyCharges"] = ""
    path = tmp_path / "score.csv"
    frame.to_csv(path, index=False)
    return path


def straightforward(config, path):
    """Read the whole file with pandas and call the saved model's predict_proba, as in a notebook."""
    run = pipeline.load_run(config, None)
    return load_model(run.run_dir, run.record).predict_proba(pd.read_csv(path))[:, 1]


@pytest.mark.parametrize(
    "name",  # forests and gradient boosting (a training each) in the slow step
    [n if n in ("logistic_regression", "hist_gradient_boosting") else pytest.param(n, marks=pytest.mark.slow)
     for n in MODEL_NAMES],
)  # fmt: skip
def test_chunked_predict_equals_the_straightforward_way_for_every_model(write_config, scoring_file, tmp_path, name):
    config = load_config(
        write_config({"model.name": name, "model.params": FAST_PARAMS[name], "predict.chunk_rows": 37})
    )
    pipeline.train(config)
    result = pipeline.predict(config, scoring_file, tmp_path / "out.csv")
    assert result.unseen_categories == {"Contract": 1}
    ours = pd.read_csv(tmp_path / "out.csv")
    np.testing.assert_allclose(ours["churn_probability"], straightforward(config, scoring_file), rtol=0, atol=1e-9)
    assert ours["customerID"].tolist() == pd.read_csv(scoring_file)["customerID"].tolist()


@pytest.fixture(scope="module")
def trained_template(tmp_path_factory):
    # the scoring file's one 'n/a' tenure is 4 % of a 25-row part: allowed, and imputed
    folder = tmp_path_factory.mktemp("streaming")
    pipeline.train(load_config(write_quick_config(folder, {"data.max_unparsed_share": 0.05})))
    return folder


@pytest.fixture
def trained(trained_template, tmp_path):
    """This test's own copy of the trained run and its config."""
    return load_config(trained_copy(trained_template, tmp_path / "work"))


def predictions(config, path, out, chunk_rows):
    config = load_config(config.source)  # fresh copy, then a different chunk size
    object.__setattr__(config.predict, "chunk_rows", chunk_rows)
    pipeline.predict(config, path, out)
    return pd.read_csv(out) if not str(out).endswith(".parquet") else pd.read_parquet(out)


@pytest.mark.parametrize(("rows", "chunk_rows"), [(25, 1), (400, 399), (400, 400), (400, 401), (400, 100_000)])
def test_chunk_boundaries_change_nothing(trained, scoring_file, tmp_path, rows, chunk_rows):
    source = tmp_path / "part.csv"
    pd.read_csv(scoring_file, dtype=str, keep_default_na=False).head(rows).to_csv(source, index=False)
    whole = predictions(trained, source, tmp_path / "whole.csv", 100_000)
    chunked = predictions(trained, source, tmp_path / "chunked.csv", chunk_rows)
    pd.testing.assert_frame_equal(chunked, whole)
    assert len(whole) == rows


def test_parquet_and_gzip_inputs_and_parquet_output(trained, scoring_file, tmp_path):
    reference = predictions(trained, scoring_file, tmp_path / "ref.csv", 50)
    pd.read_csv(scoring_file, dtype=str, keep_default_na=False).to_parquet(tmp_path / "in.parquet")
    (tmp_path / "in.csv.gz").write_bytes(gzip.compress(scoring_file.read_bytes()))
    from_parquet = predictions(trained, tmp_path / "in.parquet", tmp_path / "a.parquet", 50)
    from_gzip = predictions(trained, tmp_path / "in.csv.gz", tmp_path / "b.csv", 50)
    pd.testing.assert_frame_equal(from_parquet, reference, check_dtype=False)
    pd.testing.assert_frame_equal(from_gzip, reference)


def test_a_bad_chunk_mid_file_leaves_no_output_and_names_the_rows(trained, tmp_path, monkeypatch):
    monkeypatch.setattr("churn.io.tables.READ_BLOCK_BYTES", 1 << 12)
    lines = TELCO_SAMPLE.read_text().splitlines()
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines[:300] + [lines[300] + ",extra"] + lines[301:]) + "\n")
    object.__setattr__(trained.predict, "chunk_rows", 50)
    with pytest.raises(DataError, match=r"bad\.csv: is not a valid CSV \(.*Row #301.*\).*follows data row"):
        pipeline.predict(trained, bad, tmp_path / "out.csv")
    assert not (tmp_path / "out.csv").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_logistic_regression_run_exports_lookup_tables_that_predict_uses(trained, scoring_file, tmp_path):
    run = pipeline.load_run(trained, None)
    assert (run.run_dir / "scorer.json").is_file() and len(run.record.artefacts["scorer.json"]) == 64
    result = pipeline.predict(trained, scoring_file, tmp_path / "out.csv")
    assert result.rows == 400


def test_a_changed_scorer_file_is_refused(trained, scoring_file, tmp_path):
    run = pipeline.load_run(trained, None)
    tables = json.loads((run.run_dir / "scorer.json").read_text())
    tables["intercept"] += 1.0
    (run.run_dir / "scorer.json").write_text(json.dumps(tables))
    with pytest.raises(ModelError, match=r"scorer\.json: sha256 differs .* changed after training"):
        pipeline.predict(trained, scoring_file, tmp_path / "out.csv")
    assert not (tmp_path / "out.csv").exists()


@pytest.mark.slow  # two tree trainings
def test_tree_models_have_no_lookup_tables(write_config):
    config = load_config(write_config({"model.name": "random_forest", "model.params": FAST_PARAMS["random_forest"]}))
    result = pipeline.train(config)
    assert not (result.run_dir / "scorer.json").exists() and "scorer.json" not in result.record.artefacts


def test_progress_logs_rows_and_rate(caplog):
    progress = RowProgress("predict", every_seconds=0.0)
    with caplog.at_level(logging.INFO, logger="churn"):
        progress.update(1000)
        progress.finish()
    assert "predict: 1,000 rows done" in caplog.text and "rows/s" in caplog.text


def test_quality_report_gives_unseen_and_out_of_range_shares(trained, scoring_file, tmp_path, caplog):
    frame = pd.read_csv(scoring_file, dtype=str, keep_default_na=False)
    frame.loc[:9, "tenure"] = "999"  # 10 of 400 rows far above the training range (the n/a one too)
    frame.to_csv(tmp_path / "drift.csv", index=False)
    with caplog.at_level(logging.WARNING, logger="churn"):
        pipeline.predict(trained, tmp_path / "drift.csv", tmp_path / "out.csv", quality_report=tmp_path / "q.json")
    report = json.loads((tmp_path / "q.json").read_text())
    assert report["rows"] == 400
    tenure = report["columns"]["tenure"]
    assert tenure["above_range"] == 10 and tenure["kind"] == "numeric"
    assert tenure["outside_range_share"] == pytest.approx(10 / 400)
    contract = report["columns"]["Contract"]
    assert contract["unseen_values"] == 1 and contract["unseen_share"] == pytest.approx(1 / 400)
    # one unseen Contract of 400 is below the drift line's floor (5 values, 0.5 %); ten tenures are not
    assert (
        "input drift: numbers outside the training range in tenure 2.50% of values (columns with at least 5 "
        "such values and 0.5%)" in caplog.text
    )
    assert "never seen in training in Contract" not in caplog.text.split("input drift")[-1]


def test_score_frames_gives_what_predict_writes_batch_by_batch(trained, scoring_file, tmp_path):
    # the function of the README's Spark recipe (mapInPandas hands it an iterator of batches)
    pipeline.predict(trained, scoring_file, tmp_path / "out.csv")
    expected = pd.read_csv(tmp_path / "out.csv")
    frame = pd.read_csv(scoring_file)
    batches = (frame.iloc[start : start + 64] for start in range(0, len(frame), 64))
    scored = pd.concat(pipeline.score_frames(pipeline.load_run(trained, None), batches), ignore_index=True)
    assert list(scored.columns) == ["customerID", "churn_probability", "churn_prediction"]
    assert scored["customerID"].tolist() == expected["customerID"].tolist()
    np.testing.assert_allclose(scored["churn_probability"], expected["churn_probability"], rtol=0, atol=1e-9)
    assert scored["churn_prediction"].tolist() == expected["churn_prediction"].tolist()

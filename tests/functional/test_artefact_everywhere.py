"""One model, every door: the saved artefact, fed the shipped file however a user reads it,
answers exactly what `python main.py predict` answers."""

import json

import joblib
import numpy as np
import pandas as pd
import pyarrow.csv as pa_csv
import pytest
from support import TELCO, run_cli, write_quick_config

from churn import pipeline
from churn.config import MODEL_NAMES, load_config

FAST_PARAMS = {
    "logistic_regression": {"max_iter": 500},
    "random_forest": {"n_estimators": 20, "min_samples_leaf": 3},
    "hist_gradient_boosting": {"max_iter": 30},
    "gradient_boosting": {"n_estimators": 20},
}


# The fast suite checks the shipped config's kinds (a linear model and boosting); the other two
# kinds, another CLI training each, run in the slow step.
FAST_KINDS = ("logistic_regression", "hist_gradient_boosting")
KINDS = [name if name in FAST_KINDS else pytest.param(name, marks=pytest.mark.slow) for name in MODEL_NAMES]


@pytest.fixture(scope="module", params=KINDS)
def cli_run(request, tmp_path_factory):
    """A run of each model trained on the sample, and the CLI's predictions for the shipped file."""
    name = request.param
    folder = tmp_path_factory.mktemp(name)
    model = {"name": name, "params": FAST_PARAMS[name], "threshold": "auto"}
    config = load_config(write_quick_config(folder, model=model, paths={"models_dir": str(folder / "models")}))
    result = pipeline.train(config)
    done = run_cli("predict", "-q", "-c", config.source, "--input", TELCO, "--output", folder / "cli.csv", cwd=folder)
    assert done.returncode == 0, done.stderr
    artefact = joblib.load(result.run_dir / "model.joblib")  # as in a notebook: no churn API needed
    return artefact, pd.read_csv(folder / "cli.csv")


def json_records(kind):
    """The shipped file as JSON records whose numbers arrive as ints, floats or numeric strings."""
    frame = pd.read_csv(TELCO, dtype=str, keep_default_na=False)
    numeric = ["tenure", "MonthlyCharges", "TotalCharges", "SeniorCitizen"]
    records = frame.to_dict(orient="records")
    for record in records:
        for column in numeric:
            text = record[column].strip()
            if not text:
                record[column] = None
            elif kind == "ints":
                number = float(text)
                record[column] = int(number) if number.is_integer() else number
            elif kind == "floats":
                record[column] = float(text)
    return json.loads(json.dumps(records))  # through real JSON, as a service receives them


READINGS = {
    "read_csv defaults": lambda: pd.read_csv(TELCO),
    "read_csv dtype=str": lambda: pd.read_csv(TELCO, dtype=str),
    "read_csv engine=pyarrow": lambda: pd.read_csv(TELCO, engine="pyarrow"),
    "read_csv Arrow dtypes": lambda: pd.read_csv(TELCO, dtype_backend="pyarrow"),
    "pyarrow table": lambda: pa_csv.read_csv(TELCO),
    "pyarrow to_pandas": lambda: pa_csv.read_csv(TELCO).to_pandas(),
    "category dtypes": lambda: pd.read_csv(TELCO).astype({"Contract": "category", "SeniorCitizen": "category"}),
    "JSON records, ints": lambda: pd.DataFrame(json_records("ints")),
    "JSON records, floats": lambda: pd.DataFrame(json_records("floats")),
    "JSON records, numeric strings": lambda: pd.DataFrame(json_records("strings")),
}


@pytest.mark.parametrize("reading", list(READINGS))
def test_the_artefact_equals_cli_predict_however_the_file_is_read(cli_run, reading):
    artefact, cli = cli_run
    frame = READINGS[reading]()
    probabilities = artefact.predict_proba(frame)[:, 1]
    assert np.abs(probabilities - cli["churn_probability"].to_numpy()).max() <= 1e-9
    np.testing.assert_array_equal(artefact.predict(frame), cli["churn_prediction"].to_numpy())

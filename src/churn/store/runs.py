"""Run folders under the models folder, and the `latest` pointer between them.

A run folder `models/<run_id>/` holds `model.joblib`, `metrics.json`, the report's tables and,
written last, `metadata.json`: the run's record (`churn.store.record.RunRecord`), which holds the
sha256 of every artefact. A run is complete when its record is there and readable and every
artefact it records is there with that hash; anything else is an incomplete run and is never
loaded. This module owns writing a run folder (`creating_run`, `RunFolder`) and reading one
(`read_record`, `read_artefact`).

`models/latest` is a one-line text file naming the current run, replaced atomically under a
lock (`fcntl.flock` on `models/.latest.lock`) so concurrent trainings cannot interleave. A
training holds a lock on its own run folder while it writes it, so that `prune` can tell a
run still being written (never deleted) from the leftovers of a killed one.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import platform
import re
import secrets
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from churn.errors import ModelError
from churn.store.files import sha256_file, write_json_atomic, write_text_atomic
from churn.store.record import RunRecord
from churn.store.upgrade import REFERENCE as REFERENCE
from churn.store.upgrade import UnknownVersion, parse_record

LATEST = "latest"
METADATA = "metadata.json"
METRICS = "metrics.json"
MODEL = "model.joblib"
SCORER = "scorer.json"
TREES = "trees.json"  # a boosted-trees model of shallow trees as tables (churn.scoring.trees)
LEADERBOARD = "leaderboard.csv"
TEST_PREDICTIONS = "test_predictions.csv"
THRESHOLD_CURVE = "threshold_curve.csv"
TEST_EXPLANATIONS = "test_explanations.csv"
SURVIVAL_DECILES = "survival_deciles.csv"  # the hazard model's calibration by decile, on the test rows
SURVIVAL_CURVES = "survival_curves.csv"  # mean predicted and Kaplan-Meier survival per risk group
TRAINING_IDS = "training_ids.parquet"  # hashed ids of the training split: evaluate warns of overlap
# REFERENCE, reference.json: what monitoring compares a batch with (churn.monitoring.profiles)
TRACKING = "tracking.json"  # written after the record, once MLflow logged the run: where it went
REPORT = "report.md"
RUN_ID = re.compile(r"^\d{8}T\d{9}Z-[0-9a-f]{6}$")
RECORDED_PACKAGES = ("churn", "scikit-learn", "pandas", "numpy", "joblib", "pyyaml", "pyarrow")


def new_run_id(now: datetime | None = None) -> str:
    """A UTC timestamp to the millisecond plus a random suffix: sorts by time, never collides."""
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%S}{now.microsecond // 1000:03d}Z-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class RunFolder:
    """A run folder being written: files go in first, the record last (`finish`)."""

    run_id: str
    path: Path

    def digests(self) -> dict[str, str]:
        """Every file written so far, with its sha256: the record's `artefacts`."""
        return {path.name: sha256_file(path) for path in sorted(self.path.iterdir()) if path.is_file()}

    def finish(self, record: RunRecord) -> None:
        """Write metadata.json, the run's record; from then on the run is complete."""
        write_json_atomic(self.path / METADATA, record.to_json())


@contextlib.contextmanager
def creating_run(models_dir: Path) -> Iterator[RunFolder]:
    """Make a new, empty run folder and hold it as being written until the block ends.

    Exclusive creation guarantees two runs never share a folder; creating and locking it
    under the models folder's lock means `prune` never sees it unlocked and empty. Temporary
    files that killed processes left behind are swept away first.

    Raises:
        ModelError: the run folder was deleted while it was being written.
    """
    models_dir.mkdir(parents=True, exist_ok=True)
    with latest_lock(models_dir):
        sweep_leftovers(models_dir)
        while True:
            run_id = new_run_id()
            run_dir = models_dir / run_id
            try:
                run_dir.mkdir()
            except FileExistsError:
                continue
            break
        held = _hold(run_dir)
    try:
        yield RunFolder(run_id, run_dir)
    except FileNotFoundError:
        if run_dir.exists():
            raise
        raise ModelError(f"{run_dir}: the run folder was deleted while it was being written; train again") from None
    finally:
        os.close(held)  # releases the lock, also when the process is killed


@contextlib.contextmanager
def holding(run_dir: Path) -> Iterator[None]:
    """Hold an existing run folder as being written (while its report is redrawn)."""
    held = _hold(run_dir)
    try:
        yield
    finally:
        os.close(held)


def _hold(run_dir: Path) -> int:
    held = os.open(run_dir, os.O_RDONLY)
    fcntl.flock(held, fcntl.LOCK_EX)
    return held


def sweep_leftovers(models_dir: Path) -> list[Path]:
    """Delete the temporary files that processes killed mid-write left in the models folder
    and in run folders no live process holds. Call under the models folder's lock."""
    folders = [models_dir] + [folder for folder in run_folders(models_dir) if not is_being_written(folder)]
    swept = [path for folder in folders for path in folder.glob(".*.tmp") if path.is_file()]
    for path in swept:
        path.unlink(missing_ok=True)
    return swept


def is_being_written(run_dir: Path) -> bool:
    """Whether a live training holds this run folder."""
    try:
        held = os.open(run_dir, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(held)  # closing also drops a lock taken here
    return False


@contextlib.contextmanager
def latest_lock(models_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on the models folder's pointer while it is read and replaced."""
    models_dir.mkdir(parents=True, exist_ok=True)
    with (models_dir / ".latest.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def point_latest(models_dir: Path, run_id: str) -> None:
    """Point `latest` at a complete run, under the models folder's lock."""
    if not RUN_ID.match(run_id):
        raise ModelError(f"{run_id}: not a run id; see `python main.py models list`")
    with latest_lock(models_dir):
        if not is_complete(models_dir / run_id):  # checked under the lock: prune may be deleting it
            raise ModelError(
                f"{models_dir / run_id}: run is incomplete (metadata or a recorded artefact is missing or changed); "
                "it cannot become latest"
            )
        write_text_atomic(models_dir / LATEST, run_id + "\n")


def read_latest(models_dir: Path) -> str | None:
    """The run id that `latest` names, or None when no model has been trained yet.

    Raises:
        ModelError: `latest` names something other than a run id (a path, say): it may only
            point at a run folder inside its own models folder.
    """
    try:
        named = (models_dir / LATEST).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    if named and not RUN_ID.match(named):
        shown = named[:80].encode("unicode_escape").decode("ascii")
        raise ModelError(
            f"{models_dir / LATEST}: names {shown!r}, which is not a run id of this models folder; "
            "point it at a run with `python main.py models promote RUN_ID`"
        )
    return named or None


def record_digest(run_dir: Path) -> str | None:
    """The sha256 of a run's metadata.json (None without one): it changes whenever the run does."""
    try:
        return hashlib.sha256((run_dir / METADATA).read_bytes()).hexdigest()
    except OSError:
        return None


def is_complete(run_dir: Path) -> bool:
    """Record present and readable, and every artefact it records present with its sha256."""
    try:
        record = read_record(run_dir)
    except ModelError:
        return False
    return bool(record.artefacts) and not changed_artefacts(run_dir, record)


def changed_artefacts(run_dir: Path, record: RunRecord) -> list[str]:
    """The recorded artefacts that are missing or differ from their recorded sha256."""
    return [
        name
        for name, digest in record.artefacts.items()
        if not (run_dir / name).is_file() or sha256_file(run_dir / name) != digest
    ]


def resolve_run(models_dir: Path, run: str | Path | None) -> Path:
    """The run folder to load: a given folder path, a run id in the models folder, or latest.

    Raises:
        ModelError: there is no such run, or no model has been trained yet.
    """
    if run is None:
        run_id = read_latest(models_dir)
        if run_id is None:
            raise ModelError(f"{models_dir}: no trained model ({LATEST} is missing); run `python main.py train` first")
        return models_dir / run_id
    candidate = Path(run)
    if candidate.is_dir():
        return candidate
    if (models_dir / str(run)).is_dir():
        return models_dir / str(run)
    raise ModelError(f"{run}: no such run folder; pass a path to a run folder or a run id from {models_dir}")


def read_record(run_dir: Path) -> RunRecord:
    """The record of a run (its metadata.json), upgraded in memory when an earlier churn wrote it.

    Raises:
        ModelError: there is no record (the run is incomplete), or it cannot be read.
    """
    path = run_dir / METADATA
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{run_dir}: incomplete run (no {METADATA}); it was interrupted, train again") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path}: unreadable metadata ({exc}); train again") from None
    if not isinstance(payload, dict):
        raise ModelError(f"{path}: metadata is not a JSON object; train again")
    try:
        return parse_record(payload, _v1_metrics(run_dir, payload))
    except UnknownVersion as exc:
        raise ModelError(f"{path}: {exc}; upgrade churn to load this run, or retrain") from None
    except (ValidationError, KeyError, TypeError, AttributeError) as exc:
        problem = _first_problem(exc)
        raise ModelError(f"{path}: unreadable metadata ({problem}); retrain to get a readable run") from None


def _v1_metrics(run_dir: Path, payload: dict[str, Any]) -> dict[str, Any] | None:
    """Version 1 kept the test metrics in metrics.json: read it, hash-checked, for the upgrade."""
    if "schema_version" in payload or not isinstance(payload.get("artefacts"), dict):
        return None
    if METRICS not in payload["artefacts"]:
        return None
    metrics = json.loads(_checked_bytes(run_dir, METRICS, payload["artefacts"][METRICS]))
    return metrics if isinstance(metrics, dict) else None


def _first_problem(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        error = exc.errors()[0]
        return f"{'.'.join(map(str, error['loc']))}: {error['msg']}"
    return f"{type(exc).__name__}: {exc}"


def read_artefact(run_dir: Path, name: str, record: RunRecord) -> bytes:
    """The bytes of a run's artefact, after checking them against the sha256 the record holds.

    The bytes returned are the bytes hashed: nothing can swap the file between check and load.

    Raises:
        ModelError: no digest is recorded, the file is missing, or it changed after training.
    """
    expected = record.artefacts.get(name)
    if not expected:
        raise ModelError(
            f"{run_dir / name}: {METADATA} records no sha256 for it, so the file cannot be verified and is not "
            "loaded; retrain to get a verifiable run"
        )
    return _checked_bytes(run_dir, name, expected)


def _checked_bytes(run_dir: Path, name: str, expected: str) -> bytes:
    path = run_dir / name
    try:
        payload = path.read_bytes()
    except FileNotFoundError:
        raise ModelError(f"{path}: missing, though {METADATA} records it; restore the file or retrain") from None
    if hashlib.sha256(payload).hexdigest() != expected:
        raise ModelError(
            f"{path}: sha256 differs from the one recorded at training; the file changed after training, "
            "so it is not loaded. Retrain, or restore the original file"
        )
    return payload


def environment_info() -> dict[str, Any]:
    """Python, package versions and git commit, for reproducing a run later."""
    from importlib import metadata as importlib_metadata  # deferred: 30 ms that only training spends

    versions: dict[str, str | None] = {}
    for name in RECORDED_PACKAGES:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            versions[name] = None
    return {"python": platform.python_version(), "packages": versions, "git_commit": _git_commit()}


def _git_commit() -> str | None:
    """The commit of the checkout this package runs from, if it runs from one."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if result.returncode != 0:
        return None
    return result.stdout.strip() or None


def run_folders(models_dir: Path) -> list[Path]:
    """The run folders (named like run ids; any other folder is left alone), newest first."""
    if not models_dir.is_dir():
        return []
    return sorted((p for p in models_dir.iterdir() if p.is_dir() and RUN_ID.match(p.name)), reverse=True)


def list_runs(models_dir: Path) -> list[dict[str, Any]]:
    """Every run folder, newest first: id, created, model, test ROC AUC, threshold, status, latest.

    Status: accepted or rejected (by the gate); "training" while a live training writes it;
    "incomplete" for what a killed or failed training left behind.
    """
    latest = read_latest(models_dir)
    return [_summary(folder, latest) for folder in run_folders(models_dir)]


def _summary(run_dir: Path, latest: str | None) -> dict[str, Any]:
    """A run's line: what its record says, even when a file of it changed (`problem` says which)."""
    row: dict[str, Any] = {"run_id": run_dir.name, "created": None, "model": None, "test_roc_auc": None}
    row |= {"threshold": None, "data": None, "status": "incomplete", "latest": run_dir.name == latest}
    row["problem"] = None
    try:
        record = read_record(run_dir)
    except ModelError:
        if is_being_written(run_dir):
            return row | {"status": "training"}
        return row | {"problem": f"no readable {METADATA}: left by a killed or failed training"}
    row |= {
        "created": record.created,
        "model": record.model.name,
        "test_roc_auc": record.metrics.roc_auc,
        "threshold": record.threshold.value,
        "data": record.data.name,
    }
    changed = changed_artefacts(run_dir, record)
    if changed or not record.artefacts:
        what = ", ".join(changed) if changed else "its artefacts are not recorded"
        return row | {"problem": f"changed or missing since training: {what}"}
    return row | {"status": record.status}


def run_details(models_dir: Path, run_id: str) -> dict[str, Any]:
    """A run's record, for `models show`."""
    return read_record(resolve_run(models_dir, run_id)).to_json()


def read_tracking(run_dir: Path) -> dict[str, Any] | None:
    """Where MLflow logged this run (uri, experiment, registered model), or None if it was not."""
    try:
        where = json.loads((run_dir / TRACKING).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return where if isinstance(where, dict) and isinstance(where.get("uri"), str) else None


def compare_runs(models_dir: Path, first: str | None, second: str | None) -> dict[str, Any]:
    """Two runs side by side, for `models compare`: metrics, threshold, data, model, and every
    config key whose value differs (dotted, as the config names it)."""
    records = [read_record(resolve_run(models_dir, run)) for run in (first, second)]
    figures = [_comparable(record) for record in records]
    rows = [[label, figures[0][label], figures[1][label]] for label in figures[0]]
    configs = [flatten(record.config) for record in records]
    keys = sorted(set(configs[0]) | set(configs[1]))
    differences = [
        [key, configs[0].get(key), configs[1].get(key)] for key in keys if configs[0].get(key) != configs[1].get(key)
    ]
    return {"runs": [r.run_id for r in records], "rows": rows, "config_differences": differences}


def _comparable(record: RunRecord) -> dict[str, Any]:
    metrics, costs = record.metrics, record.metrics.costs
    return {
        "status": record.status,
        "created": record.created,
        "model": record.model.name,
        "model params": json.dumps(record.model.params, sort_keys=True),
        "threshold": record.threshold.value,
        "test ROC AUC": metrics.roc_auc,
        "test PR AUC": metrics.pr_auc,
        "test precision": metrics.precision,
        "test recall": metrics.recall,
        "test Brier score": metrics.brier,
        "CV ROC AUC": metrics.cv_roc_auc_mean,
        "expected cost (test rows)": costs.expected_cost if costs else None,
        "data file": record.data.name,
        "data sha256": record.data.sha256[:16],
        "rows used (train / test)": f"{record.data.rows_used} ({record.split.train_rows} / {record.split.test_rows})",
        "split": record.split.method,
    }


def flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as dotted keys (the config compared, MLflow's params); a list or an empty
    mapping as its JSON text."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, Mapping) and value:
            flat |= flatten(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = json.dumps(value, sort_keys=True) if isinstance(value, (list, dict)) else value
    return flat


def promote(models_dir: Path, run_id: str) -> None:
    """Point latest at an earlier run (a rollback); it must be complete and accepted.

    Raises:
        ModelError: no such run, or it is incomplete or was rejected by the validation gate.
    """
    run_dir = models_dir / run_id
    if not run_dir.is_dir():
        raise ModelError(f"{run_id}: no such run in {models_dir}; see `python main.py models list`")
    record = read_record(run_dir)
    if not record.accepted:
        raise ModelError(f"{run_id}: run was {record.status} by the validation gate; promote an accepted run")
    point_latest(models_dir, run_id)


def prune(models_dir: Path, keep: int, dry_run: bool = False) -> list[str]:
    """Keep the newest `keep` complete runs and the one latest names; delete the other complete
    runs and the leftovers of killed trainings. Never touches a run a live training is writing,
    nor a folder that is not a run. Returns the deleted run ids (with `dry_run`, the ones it
    would delete, deleting nothing)."""
    with latest_lock(models_dir):  # no promote can move latest, and no run be created, meanwhile
        latest = read_latest(models_dir)
        folders = run_folders(models_dir)
        complete = [folder for folder in folders if is_complete(folder)]
        doomed = [folder for folder in complete[keep:] if folder.name != latest]
        doomed += [folder for folder in folders if folder not in complete and not is_being_written(folder)]
        for folder in [] if dry_run else doomed:
            shutil.rmtree(folder)
    return sorted((folder.name for folder in doomed), reverse=True)

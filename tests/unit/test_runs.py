import json
from datetime import UTC, datetime

import pytest

from churn import runs
from churn.errors import ModelError


def test_run_ids_sort_by_time_and_do_not_collide():
    early = runs.new_run_id(datetime(2026, 1, 2, 3, 4, 5, 6000, tzinfo=UTC))
    late = runs.new_run_id(datetime(2026, 1, 2, 3, 4, 5, 7000, tzinfo=UTC))
    assert early.startswith("20260102T030405006Z-")
    assert early < late
    assert len({runs.new_run_id() for _ in range(50)}) == 50


def complete_run(models_dir, run_id):
    run_dir = models_dir / run_id
    run_dir.mkdir(parents=True)
    (run_dir / runs.METADATA).write_text(json.dumps({"run_id": run_id}))
    return run_dir


def test_point_latest_and_resolve_run(tmp_path):
    assert runs.read_latest(tmp_path) is None
    run_dir = complete_run(tmp_path, "r1")
    runs.point_latest(tmp_path, "r1")
    assert (tmp_path / "latest").read_text() == "r1\n"
    assert runs.resolve_run(tmp_path, None) == run_dir
    assert runs.resolve_run(tmp_path, "r1") == run_dir
    assert runs.resolve_run(tmp_path, str(run_dir)) == run_dir


def test_point_latest_refuses_an_incomplete_run(tmp_path):
    (tmp_path / "r2").mkdir()
    with pytest.raises(ModelError, match="incomplete"):
        runs.point_latest(tmp_path, "r2")
    assert runs.read_latest(tmp_path) is None


def test_resolve_run_errors(tmp_path):
    with pytest.raises(ModelError, match="no trained model"):
        runs.resolve_run(tmp_path, None)
    with pytest.raises(ModelError, match="nope: no such run folder"):
        runs.resolve_run(tmp_path, "nope")


def test_read_metadata_of_incomplete_and_corrupt_runs(tmp_path):
    (tmp_path / "r").mkdir()
    with pytest.raises(ModelError, match="incomplete run"):
        runs.read_metadata(tmp_path / "r")
    (tmp_path / "r" / runs.METADATA).write_text("{broken")
    with pytest.raises(ModelError, match="unreadable metadata"):
        runs.read_metadata(tmp_path / "r")


def test_create_run_dir_makes_distinct_empty_folders(tmp_path):
    ids = {runs.create_run_dir(tmp_path)[0] for _ in range(5)}
    assert len(ids) == 5
    assert all(not any((tmp_path / i).iterdir()) for i in ids)


def test_environment_info_names_versions():
    info = runs.environment_info()
    assert info["packages"]["scikit-learn"]
    assert info["python"].count(".") == 2

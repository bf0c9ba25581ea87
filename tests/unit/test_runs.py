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


def fake_run(models_dir, run_id, status="accepted", auc=0.8):
    run_dir = models_dir / run_id
    run_dir.mkdir(parents=True)
    metadata = {"run_id": run_id, "created": "2026-01-01T00:00:00+00:00", "model_name": "m", "threshold": 0.3}
    (run_dir / runs.METADATA).write_text(json.dumps(metadata | {"status": status}))
    (run_dir / runs.METRICS).write_text(json.dumps({"roc_auc": auc}))
    return run_dir


def test_list_runs_newest_first_with_status_and_latest(tmp_path):
    fake_run(tmp_path, "20260101T000000000Z-aaaaaa")
    fake_run(tmp_path, "20260102T000000000Z-bbbbbb", status="rejected")
    (tmp_path / "20260103T000000000Z-cccccc").mkdir()  # interrupted: no metadata
    runs.point_latest(tmp_path, "20260101T000000000Z-aaaaaa")
    rows = runs.list_runs(tmp_path)
    assert [r["run_id"][-6:] for r in rows] == ["cccccc", "bbbbbb", "aaaaaa"]
    assert [r["status"] for r in rows] == ["incomplete", "rejected", "accepted"]
    assert [r["latest"] for r in rows] == [False, False, True]
    assert rows[2]["test_roc_auc"] == 0.8 and rows[2]["threshold"] == 0.3


def test_promote_rolls_back_to_an_accepted_run_only(tmp_path):
    fake_run(tmp_path, "r1")
    fake_run(tmp_path, "r2", status="rejected")
    (tmp_path / "r3").mkdir()
    runs.promote(tmp_path, "r1")
    assert runs.read_latest(tmp_path) == "r1"
    with pytest.raises(ModelError, match="r2: run was rejected"):
        runs.promote(tmp_path, "r2")
    with pytest.raises(ModelError, match="r3: incomplete run"):
        runs.promote(tmp_path, "r3")
    with pytest.raises(ModelError, match="r9: no such run"):
        runs.promote(tmp_path, "r9")
    assert runs.read_latest(tmp_path) == "r1"


def test_prune_keeps_the_newest_and_never_the_latest(tmp_path):
    for index in range(5):
        fake_run(tmp_path, f"2026010{index}T000000000Z-x")
    runs.point_latest(tmp_path, "20260100T000000000Z-x")  # the oldest is live
    deleted = runs.prune(tmp_path, keep=2)
    assert sorted(deleted) == ["20260101T000000000Z-x", "20260102T000000000Z-x"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == [
        "20260100T000000000Z-x",
        "20260103T000000000Z-x",
        "20260104T000000000Z-x",
    ]


def test_run_details_has_metadata_and_metrics(tmp_path):
    fake_run(tmp_path, "r1")
    details = runs.run_details(tmp_path, "r1")
    assert details["metadata"]["run_id"] == "r1" and details["metrics"]["roc_auc"] == 0.8

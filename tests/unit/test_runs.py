import json
import multiprocessing
import os
from datetime import UTC, datetime

import pytest
from support import fake_record

from churn.errors import ModelError
from churn.store import runs
from churn.store.files import sha256_file, write_text_atomic


def test_run_ids_sort_by_time_and_do_not_collide():
    early = runs.new_run_id(datetime(2026, 1, 2, 3, 4, 5, 6000, tzinfo=UTC))
    late = runs.new_run_id(datetime(2026, 1, 2, 3, 4, 5, 7000, tzinfo=UTC))
    assert early.startswith("20260102T030405006Z-")
    assert early < late
    assert len({runs.new_run_id() for _ in range(50)}) == 50


def complete_run(models_dir, run_id, status="accepted"):
    """A run folder with one artefact and a record holding its hash."""
    run_dir = models_dir / run_id
    run_dir.mkdir(parents=True)
    (run_dir / runs.MODEL).write_bytes(b"a model")
    record = fake_record(run_id, {runs.MODEL: sha256_file(run_dir / runs.MODEL)}, status)
    (run_dir / runs.METADATA).write_text(json.dumps(record.to_json()))
    return run_dir


def test_complete_means_metadata_and_every_recorded_artefact_with_its_hash(tmp_path):
    run_dir = complete_run(tmp_path, "20260101T000000001Z-aaaaa1")
    assert runs.is_complete(run_dir)
    (run_dir / runs.MODEL).write_text("{}")
    assert not runs.is_complete(run_dir)  # changed
    assert runs.changed_artefacts(run_dir, runs.read_record(run_dir)) == [runs.MODEL]
    (run_dir / runs.MODEL).unlink()
    assert not runs.is_complete(run_dir)  # missing
    (run_dir / runs.METADATA).write_text(json.dumps(fake_record("20260101T000000001Z-aaaaa1", {}).to_json()))
    assert not runs.is_complete(run_dir)  # records nothing
    (run_dir / runs.METADATA).write_text(json.dumps({"run_id": "20260101T000000001Z-aaaaa1"}))
    assert not runs.is_complete(run_dir)  # not a record


def test_point_latest_and_resolve_run(tmp_path):
    assert runs.read_latest(tmp_path) is None
    run_dir = complete_run(tmp_path, "20260101T000000001Z-aaaaa1")
    runs.point_latest(tmp_path, "20260101T000000001Z-aaaaa1")
    assert (tmp_path / "latest").read_text() == "20260101T000000001Z-aaaaa1\n"
    assert runs.resolve_run(tmp_path, None) == run_dir
    assert runs.resolve_run(tmp_path, "20260101T000000001Z-aaaaa1") == run_dir
    assert runs.resolve_run(tmp_path, str(run_dir)) == run_dir


def test_point_latest_refuses_an_incomplete_run(tmp_path):
    (tmp_path / "20260101T000000002Z-aaaaa2").mkdir()
    with pytest.raises(ModelError, match="incomplete"):
        runs.point_latest(tmp_path, "20260101T000000002Z-aaaaa2")
    assert runs.read_latest(tmp_path) is None


def test_resolve_run_errors(tmp_path):
    with pytest.raises(ModelError, match="no trained model"):
        runs.resolve_run(tmp_path, None)
    with pytest.raises(ModelError, match="nope: no such run folder"):
        runs.resolve_run(tmp_path, "nope")


def test_read_record_of_incomplete_corrupt_and_unknown_runs(tmp_path):
    (tmp_path / "r").mkdir()
    with pytest.raises(ModelError, match="incomplete run"):
        runs.read_record(tmp_path / "r")
    (tmp_path / "r" / runs.METADATA).write_text("{broken")
    with pytest.raises(ModelError, match="unreadable metadata"):
        runs.read_record(tmp_path / "r")
    (tmp_path / "r" / runs.METADATA).write_text(json.dumps(fake_record("r", {}).to_json() | {"threshold": 0.5}))
    with pytest.raises(ModelError, match=r"unreadable metadata \(threshold: .*retrain"):
        runs.read_record(tmp_path / "r")
    (tmp_path / "r" / runs.METADATA).write_text(json.dumps({"schema_version": 9, "run_id": "r"}))
    with pytest.raises(ModelError, match="schema_version 9 .*reads versions 1 and 2.*upgrade churn"):
        runs.read_record(tmp_path / "r")


def test_creating_run_makes_distinct_empty_folders_held_while_written(tmp_path):
    ids = set()
    for _ in range(5):
        with runs.creating_run(tmp_path) as folder:
            assert runs.is_being_written(folder.path) and not any(folder.path.iterdir())
            ids.add(folder.run_id)
        assert not runs.is_being_written(folder.path)
    assert len(ids) == 5


def test_environment_info_names_versions():
    info = runs.environment_info()
    assert info["packages"]["scikit-learn"]
    assert info["python"].count(".") == 2


def fake_run(models_dir, run_id, status="accepted"):
    return complete_run(models_dir, run_id, status)


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
    fake_run(tmp_path, "20260101T000000001Z-aaaaa1")
    fake_run(tmp_path, "20260101T000000002Z-aaaaa2", status="rejected")
    (tmp_path / "20260101T000000003Z-aaaaa3").mkdir()
    runs.promote(tmp_path, "20260101T000000001Z-aaaaa1")
    assert runs.read_latest(tmp_path) == "20260101T000000001Z-aaaaa1"
    with pytest.raises(ModelError, match="20260101T000000002Z-aaaaa2: run was rejected"):
        runs.promote(tmp_path, "20260101T000000002Z-aaaaa2")
    with pytest.raises(ModelError, match="20260101T000000003Z-aaaaa3: incomplete run"):
        runs.promote(tmp_path, "20260101T000000003Z-aaaaa3")
    with pytest.raises(ModelError, match="20260101T000000009Z-aaaaa9: no such run"):
        runs.promote(tmp_path, "20260101T000000009Z-aaaaa9")
    assert runs.read_latest(tmp_path) == "20260101T000000001Z-aaaaa1"


def run_id(day):
    return f"202601{day:02d}T000000000Z-abcdef"


def test_prune_keeps_the_newest_and_never_the_latest(tmp_path):
    for day in range(1, 6):
        fake_run(tmp_path, run_id(day))
    runs.point_latest(tmp_path, run_id(1))  # the oldest is live
    assert runs.prune(tmp_path, keep=2) == [run_id(3), run_id(2)]
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == [run_id(1), run_id(4), run_id(5)]


def test_a_dry_run_prune_lists_and_deletes_nothing(tmp_path):
    for day in range(1, 6):
        fake_run(tmp_path, run_id(day))
    runs.point_latest(tmp_path, run_id(5))
    before = sorted(p.name for p in tmp_path.iterdir())
    assert runs.prune(tmp_path, keep=2, dry_run=True) == [run_id(3), run_id(2), run_id(1)]
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert runs.prune(tmp_path, keep=2) == [run_id(3), run_id(2), run_id(1)]


def _hold_run_folder(models_dir, ready, release):
    """Another process, mid-training: it holds a run folder it has not finished writing."""
    with runs.creating_run(models_dir) as folder:
        (folder.path / runs.MODEL).write_bytes(b"half a model")
        ready.set()
        release.wait(30)


def test_prune_spares_a_run_still_being_written_and_folders_that_are_not_runs(tmp_path):
    fake_run(tmp_path, run_id(1))
    runs.point_latest(tmp_path, run_id(1))
    (tmp_path / "notes").mkdir()  # not a run: never touched
    (tmp_path / run_id(2)).mkdir()  # left by a killed training: deleted
    context = multiprocessing.get_context("fork")
    ready, release = context.Event(), context.Event()
    writer = context.Process(target=_hold_run_folder, args=(tmp_path, ready, release))
    writer.start()
    try:
        assert ready.wait(30)
        live = [row for row in runs.list_runs(tmp_path) if row["status"] == "training"]
        assert len(live) == 1
        assert runs.prune(tmp_path, keep=1) == [run_id(2)]  # between the two trainings' saves
        assert (tmp_path / live[0]["run_id"]).is_dir() and (tmp_path / "notes").is_dir()
    finally:
        release.set()
        writer.join(30)
    assert runs.prune(tmp_path, keep=1) == [live[0]["run_id"]]  # once its writer is gone, a leftover


def test_writing_into_a_run_folder_deleted_meanwhile_never_recreates_it(tmp_path):
    with pytest.raises(ModelError, match="deleted while it was being written"):
        with runs.creating_run(tmp_path) as folder:
            os.rmdir(folder.path)
            write_text_atomic(folder.path / runs.METRICS, "{}")
    assert not folder.path.exists()


def test_run_details_is_the_record_with_its_metrics(tmp_path):
    fake_run(tmp_path, "20260101T000000001Z-aaaaa1")
    details = runs.run_details(tmp_path, "20260101T000000001Z-aaaaa1")
    assert (
        details["run_id"] == "20260101T000000001Z-aaaaa1"
        and details["metrics"]["roc_auc"] == 0.8
        and details["schema_version"] == 2
    )


def test_leftover_temporary_files_are_swept_except_where_a_writer_is_alive(tmp_path):
    dead = tmp_path / run_id(1)
    dead.mkdir()
    (dead / ".model.joblib.x1.tmp").write_bytes(b"half")
    (tmp_path / ".latest.x2.tmp").write_text("r")
    with runs.creating_run(tmp_path) as folder:  # a new training sweeps first
        live = folder.path
        assert not (dead / ".model.joblib.x1.tmp").exists() and not (tmp_path / ".latest.x2.tmp").exists()
        (live / ".metrics.json.x3.tmp").write_text("{")
        with runs.latest_lock(tmp_path):
            assert runs.sweep_leftovers(tmp_path) == []
        assert (live / ".metrics.json.x3.tmp").exists()  # its writer still holds the folder


def test_list_shows_what_a_changed_run_still_says_and_names_the_file(tmp_path):
    fake_run(tmp_path, run_id(1))
    run_dir = tmp_path / run_id(1)
    changed = next(p for p in run_dir.iterdir() if p.name != runs.METADATA)
    changed.write_bytes(changed.read_bytes() + b"one more line\n")
    (row,) = runs.list_runs(tmp_path)
    assert row["status"] == "incomplete" and row["created"] is not None
    assert row["problem"] == f"changed or missing since training: {changed.name}"


def test_compare_puts_two_runs_side_by_side_with_their_config_differences(tmp_path):
    fake_run(tmp_path, run_id(1))
    fake_run(tmp_path, run_id(2), status="rejected")
    found = runs.compare_runs(tmp_path, run_id(1), run_id(2))
    assert found["runs"] == [run_id(1), run_id(2)]
    rows = {label: (a, b) for label, a, b in found["rows"]}
    assert rows["status"] == ("accepted", "rejected") and rows["test ROC AUC"] == (0.8, 0.8)
    assert found["config_differences"] == []
    with pytest.raises(ModelError):
        runs.compare_runs(tmp_path, run_id(1), run_id(9))


def test_config_keys_compare_dotted():
    assert runs.flatten({"split": {"test_size": 0.2}, "data": {"numeric_features": ["a"]}}) == {
        "split.test_size": 0.2, "data.numeric_features": '["a"]'}  # fmt: skip


def test_lookup_tables_saved_before_missing_values_read_as_listing_none():
    from churn.cleaning import FeatureSpec
    from churn.store import upgrade

    old = {"features": {"numeric": ["tenure"], "categorical": [], "bool_spelling": {}}}
    with pytest.raises(KeyError):
        FeatureSpec.from_dict(old["features"])  # only the upgrade knows older runs
    upgraded = upgrade.upgrade_tables(old)
    assert FeatureSpec.from_dict(upgraded["features"]).missing_values == ()
    assert "missing_values" not in old["features"]  # the file's own payload is left as read
    today = {"features": old["features"] | {"missing_values": ["-999"]}}
    assert upgrade.upgrade_tables(today) is today

import hashlib
import os
import stat

import pytest

from churn.store.files import atomic_path, sha256_file, write_json_atomic


def test_atomic_path_replaces_the_target_only_on_success(tmp_path):
    target = tmp_path / "f.txt"
    target.write_text("old")
    with pytest.raises(ValueError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise ValueError("boom")
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]
    with atomic_path(target) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new"


def test_write_json_atomic_and_sha256(tmp_path):
    (tmp_path / "a").mkdir()
    write_json_atomic(tmp_path / "a" / "m.json", {"x": 1})
    data = (tmp_path / "a" / "m.json").read_bytes()
    assert data == b'{\n  "x": 1\n}\n'
    assert sha256_file(tmp_path / "a" / "m.json") == hashlib.sha256(data).hexdigest()


def test_the_file_then_its_folder_are_flushed_after_the_rename(tmp_path, monkeypatch):
    # A rename lives in the folder's entries: without flushing the folder, a power cut can
    # lose a `latest` that was reported written.
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append("fsync folder" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync file")
        real_fsync(fd)

    def replace(source, target):
        events.append("rename")
        real_replace(source, target)

    monkeypatch.setattr("churn.store.files.os.fsync", fsync)
    monkeypatch.setattr("churn.store.files.os.replace", replace)
    write_json_atomic(tmp_path / "latest.json", {"run": "r1"})
    assert events == ["fsync file", "rename", "fsync folder"]

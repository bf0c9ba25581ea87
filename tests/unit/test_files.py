import hashlib

import pytest

from churn.files import atomic_path, sha256_file, write_json_atomic


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
    write_json_atomic(tmp_path / "a" / "m.json", {"x": 1})
    data = (tmp_path / "a" / "m.json").read_bytes()
    assert data == b'{\n  "x": 1\n}\n'
    assert sha256_file(tmp_path / "a" / "m.json") == hashlib.sha256(data).hexdigest()

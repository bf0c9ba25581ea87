"""Crash-safe file writing: every artefact goes to a temporary file in its own folder, is
flushed to disk, then renamed into place, and the folder is flushed too: a reader sees the old
file or the new one, never half of one, and a power cut cannot undo a rename reported done."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from churn.errors import DataError


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside `target`; rename it onto `target` only on success.

    On any exception the temporary file is removed and `target` is left as it was. The folder
    must exist: it is never created here, so a run folder deleted under a writer stays deleted
    (the write fails with FileNotFoundError).
    """
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; the final file gets the usual permissions
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, target)
        fsync_folder(target.parent)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(target: Path, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(target: Path, payload: Any) -> None:
    write_text_atomic(target, json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def fsync_folder(folder: Path) -> None:
    """Flush a folder's entries to disk: a rename (or a new file) in it survives a power cut."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync(path: Path) -> None:
    # Without fsync a power cut after the rename can leave a renamed but empty file.
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


def refuse_overwriting_input(inputs: Path | Sequence[Path], *outputs: str | Path | None) -> None:
    """Refuse to write an output over one of the inputs: scoring a file must never destroy it.

    Raises:
        DataError: naming the output path, for --output or --report alike.
    """
    sources = {path.resolve() for path in ([inputs] if isinstance(inputs, Path) else inputs)}
    for output in outputs:
        if output is not None and str(output) != "-" and Path(output).resolve() in sources:
            raise DataError(f"{output}: --output is the input file; choose another output path")


def prepare_output(path: str | Path, option: str) -> None:
    """Make sure a file can be written at `path` before any input is read: not a URL, not a
    folder, its folder created when missing and taking a new file (a probe file, removed).
    stdout ("-") and devices (/dev/null) pass.

    Raises:
        DataError: naming the path, what is wrong and the option to change.
    """
    if str(path) == "-" or is_device(path):
        return
    if "://" in str(path):
        raise DataError(
            f"{option} {path}: a URL is not a file path; give a file, or a database URL with --output-table"
        )
    target = Path(path)
    if target.is_dir():
        raise DataError(f"{target}: is a folder; {option} names a file (for example {target / 'out.csv'})")
    prepare_folder(target.parent, option)


def prepare_folder(folder: Path, option: str, create: bool = True) -> None:
    """Check that `folder` takes a new file, creating it (and its parents) when missing, or
    without `create` only checking the nearest folder that exists (created when written).

    Raises:
        DataError: a part of the path is a file, or the folder cannot be created or written.
    """
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise DataError(f"{folder}: {existing} is a file, not a folder; choose another {option}")
    if create:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DataError(f"{folder}: cannot be created ({exc.strerror}); choose another {option}") from None
        existing = folder
    try:
        fd, probe = tempfile.mkstemp(prefix=".churn-probe-", dir=existing)
    except OSError as exc:
        raise DataError(f"{folder}: cannot be written here ({exc.strerror}); choose another {option}") from None
    os.close(fd)
    os.unlink(probe)


def is_device(path: str | Path) -> bool:
    """A character device or a pipe (/dev/null, a FIFO): no temporary file and rename there."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return False
    return stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)

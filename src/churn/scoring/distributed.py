"""Scoring on a Dask cluster: `predict --engine dask` (optional: `pip install -r requirements-dask.txt`).

The input is one file, a folder of parts or a glob; each part is one task. The client loads
and hash-checks the run once and sends it to the workers, which need the churn package but not
the models folder. Each worker scores its part with the very code of local predict
(`churn.scoring.core.score_table`) into a Parquet part of a staging folder beside the output, and
returns the part's data-quality tally; the client adds them up, checks and reports them once,
as predict does for one file. Only when every part has succeeded is the output published: the
folder renamed into place, or the parts assembled in input order into one CSV. A bad part stops
the run, naming the part, and nothing is published. Workers that die are replaced by Dask and
their parts rerun.

Inputs and outputs must be on storage that the workers and the client both reach (a shared
filesystem on a real cluster; the local disk for the default local cluster).
"""

from __future__ import annotations

import glob
import importlib.util
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from churn.cleaning import check_unparsed
from churn.config import Config
from churn.errors import ConfigError, DataError
from churn.explain import explainers
from churn.explain.explainers import Explain
from churn.io import tables
from churn.parallel import DASK_INSTALL, dask_client
from churn.scoring import core
from churn.scoring.quality import QualityTally
from churn.scoring.scorers import LoadedRun, load_run
from churn.store.files import refuse_overwriting_input

logger = logging.getLogger(__name__)

INSTALL = DASK_INSTALL


@dataclass(frozen=True)
class DaskResult:
    output: str
    parts: int
    rows: int
    predicted_positive: int
    quality: QualityTally


def input_parts(spec: Path) -> list[Path]:
    """The parts to score, in input order: one file, a folder's table files, or a glob's.

    Raises:
        DataError: nothing to score, or a part of a type predict does not read.
    """
    text = str(spec)
    if spec.is_dir():
        found = sorted(path for path in spec.iterdir() if path.is_file() and not path.name.startswith("."))
    elif glob.has_magic(text):
        found = sorted(Path(path) for path in glob.glob(text) if Path(path).is_file())
    else:
        found = [spec]
    if not found:
        raise DataError(f"{spec}: no files to score; pass a file, a folder of parts or a glob")
    for path in found:
        tables.table_format(path)  # an unsupported part is an error naming it
    return found


def predict(
    config: Config,
    spec: Path,
    output: Path,
    run: str | None,
    scheduler: str | None,
    explain: Explain | None = None,
    overwrite: bool = False,
) -> DaskResult:
    """Score every part on a Dask cluster; publish a folder of Parquet parts or one CSV. With
    `explain`, each row's reason codes (and contributions), as local predict writes them.

    Raises:
        ConfigError: Dask is not installed.
        ChurnError: the scheduler cannot be reached, a part is bad, or the run cannot be loaded.
    """
    if importlib.util.find_spec("distributed") is None:
        raise ConfigError(f"--engine dask needs Dask, which is not installed; install it with {INSTALL}")
    parts = input_parts(spec)
    refuse_overwriting_input(parts, output)
    if not overwrite:
        _refuse_existing(output)
    loaded = load_run(config.paths.models_dir, run)  # hash-checked once, here; the workers get it from us
    explain = explainers.checked(explain, loaded.scorer, config.predict.max_explain_seconds, "--explain")
    if explain is not None:  # timed here on the whole input, once; the parts are not timed again
        core.check_explain_time(loaded, parts, explain, str(spec))
        explain = replace(explain, max_seconds=None)
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.", suffix=".tmp", dir=output.parent))
    try:
        with _client(config, scheduler) as client:
            results = _score_parts(client, config, loaded, parts, staging, explain)
        quality = QualityTally(loaded.features)
        for result in results:
            quality.merge(result.quality)
        check_unparsed(quality.unparsed(), spec, config.data.max_unparsed_share)  # over the whole input
        _publish(staging, output, config.predict.chunk_rows)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    for line in quality.warnings():
        logger.warning("%s: %s", spec, line)
    rows, positives = sum(r.rows for r in results), sum(r.positives for r in results)
    return DaskResult(str(output), len(parts), rows, positives, quality)


@dataclass(frozen=True)
class PartResult:
    """One part scored: its rows, how many are predicted to churn, and its data quality."""

    rows: int
    positives: int
    quality: QualityTally


def score_part(
    config: Config, loaded: LoadedRun, source: Path, target: Path, explain: Explain | None = None
) -> PartResult:
    """One task, on a worker: the part scored (and explained) by local predict's code into a
    Parquet part. The data-quality figures come back with the result; the client adds them up
    (and checks values that are not numbers over the whole input) and reports them."""
    horizons = None if config.predict.horizons else False
    options = core.ScoreOptions(config.predict.chunk_rows, explain=explain, horizons=horizons)
    chunks = core.ScoredTable(loaded, source, options)
    with tables.TableWriter(target) as writer:
        positives = core.write_chunks(chunks, writer)
    return PartResult(chunks.rows, positives, chunks.quality)


def _refuse_existing(output: Path) -> None:
    """One rule for both outputs: an existing CSV or a folder that holds anything is kept unless
    --overwrite (a cluster's run takes long: replacing last month's scores by a typo is costly)."""
    if output.exists() and not (output.is_dir() and not any(output.iterdir())):
        raise DataError(f"{output}: already exists; choose a new output, or pass --overwrite to replace it")


def _client(config: Config, scheduler: str | None) -> Any:
    dask = config.predict.dask
    return dask_client(
        scheduler or dask.scheduler, dask.workers, dask.threads_per_worker, "--scheduler / predict.dask.scheduler"
    )


def _score_parts(
    client: Any, config: Config, loaded: LoadedRun, parts: list[Path], staging: Path, explain: Explain | None
) -> list[PartResult]:
    """Submit one task per part; gather them in input order, with progress; the first
    failure cancels the rest."""
    from distributed import as_completed

    shared = client.scatter(loaded, broadcast=True)  # the scorer goes to each worker once
    futures = [
        client.submit(score_part, config, shared, part, staging / f"part-{index:05d}.parquet", explain, pure=False)
        for index, part in enumerate(parts)
    ]
    started, rows, done = time.perf_counter(), 0, 0
    try:
        for future in as_completed(futures):
            result = future.result()  # re-raises a part's error here, with its message
            done, rows = done + 1, rows + result.rows
            rate = rows / max(time.perf_counter() - started, 1e-9)
            logger.info("dask: %d/%d parts done, %s rows, %s rows/s", done, len(parts), f"{rows:,}", f"{rate:,.0f}")
    except BaseException:
        client.cancel(futures)
        raise
    return [future.result() for future in futures]


def _publish(staging: Path, output: Path, chunk_rows: int) -> None:
    for leftover in staging.glob(".*.tmp"):  # a worker killed mid-write left it; its part was rerun
        leftover.unlink()
    if output.suffix.lower() == ".csv":  # the parts, in input order, streamed into one CSV
        with tables.TableWriter(output) as writer:
            for part in sorted(staging.glob("part-*.parquet")):
                for table in tables.iter_table(part, None, chunk_rows):
                    writer.write(table)
        return
    if not output.exists():
        os.rename(staging, output)
        return
    # --overwrite: the new folder takes the old one's name in one rename, the old one goes after
    old = output.with_name(f".{output.name}.replaced.tmp")
    os.rename(output, old)
    os.rename(staging, output)
    shutil.rmtree(old) if old.is_dir() else old.unlink()

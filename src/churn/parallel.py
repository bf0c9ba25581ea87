"""How many cores this process may use, and scoring in parallel without changing a number.

`usable_cores()` is what the process is allowed to run on: its CPU affinity, further bounded by
a cgroup CPU quota (a container's `--cpus`), not `os.cpu_count()`, which counts the machine.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from churn.errors import ChurnError

logger = logging.getLogger(__name__)

DASK_INSTALL = "pip install -r requirements-dask.txt"
CONNECT_SECONDS = 10

CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")  # cgroup v2: "<quota> <period>" or "max <period>"


def usable_cores() -> int:
    """The cores this process may run on: its affinity, bounded by a cgroup CPU quota."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota = _cgroup_quota()
    return max(1, min(cores, quota)) if quota is not None else max(1, cores)


def _cgroup_quota() -> int | None:
    try:
        quota, period = CGROUP_CPU_MAX.read_text(encoding="utf-8").split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    return max(1, math.ceil(int(quota) / int(period)))


@contextmanager
def dask_client(address: str | None, workers: int | None, threads: int, setting: str) -> Iterator[Any]:
    """A Dask client: of the scheduler at `address`, or of a local cluster of `workers` worker
    processes (default one per usable core) with `threads` threads each. `setting` names what
    sets the address, for the error.

    Raises:
        ChurnError: the scheduler cannot be reached within 10 s.
    """
    from distributed import Client, LocalCluster  # deferred: the optional dask extra

    level = max(logging.getLogger("churn").getEffectiveLevel(), logging.WARNING)
    for name in ("distributed", "dask"):  # their notices would drown churn's own lines
        logging.getLogger(name).setLevel(level)
    if address is None:
        workers = workers or usable_cores()
        # worker processes inherit OMP_NUM_THREADS (predict and train set 1): OpenMP never oversubscribes them
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=threads, processes=True, dashboard_address=None, silence_logs=level
        )
        with cluster, Client(cluster) as client:
            logger.info("dask: local cluster of %d worker process(es)", workers)
            yield client
        return
    try:
        client = Client(address, timeout=f"{CONNECT_SECONDS}s")
    except (OSError, TimeoutError) as error:
        raise ChurnError(
            f"cannot reach the Dask scheduler at {address} within {CONNECT_SECONDS} s ({error}); "
            f"start it (dask scheduler) or fix {setting}"
        ) from None
    with client:
        logger.info("dask: scheduler %s with %d worker(s)", address, len(client.scheduler_info()["workers"]))
        yield client

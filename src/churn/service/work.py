"""Where a request's CPU work runs: on the event loop when it is small, else on a few scoring
threads behind a bounded queue, so that `/health` answers while a large body is parsed and
scored, and a flood of large bodies is turned away instead of queued without end.

A body of a few customers is parsed and scored in well under a millisecond, less than a thread
hop costs, so it stays on the loop; anything larger goes to the threads.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from churn.service.errors import ClientError

T = TypeVar("T")
INLINE_BYTES = 16 * 1024  # about 15 customers as JSON: scored on the loop


class Work:
    """`serve.threads` scoring threads, at most `serve.max_queue` requests waiting for one."""

    def __init__(self, threads: int, max_queue: int) -> None:
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="churn-score")
        self.capacity = threads + max_queue
        self.pending = 0  # running or waiting; only the event loop's thread changes it

    async def run(self, size: int, function: Callable[..., T], *args: object) -> T:
        """`function(*args)`, inline for a body of `size` bytes up to INLINE_BYTES, else on a thread.

        Raises:
            ClientError: 503 with Retry-After when every thread is busy and the queue is full.
        """
        if size <= INLINE_BYTES:
            return function(*args)
        if self.pending >= self.capacity:
            raise ClientError(
                503, "every scoring thread is busy and the queue is full; retry shortly", headers={"retry-after": "1"}
            )
        self.pending += 1
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self.pool, functools.partial(function, *args))
        finally:
            self.pending -= 1

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

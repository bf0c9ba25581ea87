"""`python main.py serve`: the application on uvicorn, with the signals a service needs.

SIGTERM or SIGINT: stop accepting (connections already waiting to be accepted are taken, and
their requests answered), finish every request whose bytes have arrived within
`serve.shutdown_timeout_s`, close connections still sending theirs, exit 0. SIGHUP: look for a
new run at once instead of within half a second. With `--workers N`, uvicorn's supervisor
starts N processes, each loading the run itself; Prometheus values are then summed across them
through files in a temporary folder. Connections are `churn.service.connections.GuardedProtocol`.

Each worker scores on `serve.threads` threads, and limits OpenMP and BLAS to as many: a tree
model scoring one row must not wake a team of OpenMP threads that then spin on cores the
service shares (measured: 1-row p50 6.4-7.3 ms with the default OpenMP threads, 1.8 ms with one).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import signal
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvicorn
from threadpoolctl import threadpool_limits
from uvicorn.supervisors import Multiprocess

from churn.config import Config, load_config
from churn.errors import ChurnError
from churn.logs import LOG_LEVEL_VARIABLE, configure_logging
from churn.scoring.scorers import load_run
from churn.service.app import create_app
from churn.service.connections import GuardedProtocol
from churn.service.deps import TOKEN_VARIABLE

logger = logging.getLogger("churn.service")

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
_ENV_CONFIG, _ENV_RUN = "CHURN_SERVE_CONFIG", "CHURN_SERVE_RUN"


def serve(config: Config, host: str, port: int, workers: int, run: str | None) -> None:
    """Serve until SIGTERM or SIGINT.

    Raises:
        ChurnError: a pinned run cannot be loaded, or the port cannot be bound.
    """
    limit_threads(config.serve.threads)  # before a model loads OpenMP; worker processes inherit it
    GuardedProtocol.configure(config.serve)
    if run is not None:
        load_run(config.paths.models_dir, run)  # a pinned run that cannot load is an error now, not a 503 later
    warn_if_open(host)
    sock = _bind(host, port)
    logger.info(
        "listening on http://%s:%d (%d worker(s)); %s",
        host,
        port,
        workers,
        f"serving run {run}, pinned" if run else f"following {config.paths.models_dir}/latest",
    )
    if workers == 1:
        app = create_app(config, run)
        _Server(_uvicorn_config(app, config), app.state.churn.holder).run(sockets=[sock])
        logger.info("stopped")
        return
    _serve_workers(config, run, workers, sock)


def _serve_workers(config: Config, run: str | None, workers: int, sock: socket.socket) -> None:
    with tempfile.TemporaryDirectory(prefix="churn-metrics-") as metrics_dir:
        # Read by the worker processes when they start (spawned, so they import afresh).
        os.environ |= {"PROMETHEUS_MULTIPROC_DIR": metrics_dir, _ENV_CONFIG: str(config.source.resolve())}
        os.environ[_ENV_RUN] = run or ""
        settings = _uvicorn_config("churn.service.server:app_from_environment", config, factory=True, workers=workers)
        # uvicorn's supervisor: SIGTERM/SIGINT stop the workers gracefully; SIGHUP restarts them,
        # and each reloads the run latest names.
        Multiprocess(settings, sockets=[sock]).run()


def app_from_environment() -> Any:
    """The application of one worker process, from what the supervisor put in the environment."""
    configure_logging(os.environ.get(LOG_LEVEL_VARIABLE, "info"))
    config = load_config(Path(os.environ[_ENV_CONFIG]))
    GuardedProtocol.configure(config.serve)  # in this process too: the protocols are made here
    return create_app(config, os.environ.get(_ENV_RUN) or None)


def limit_threads(threads: int) -> None:
    """OpenMP and BLAS start at most `threads` threads in this process and the ones it starts
    (unless the environment already says how many): through the environment for the libraries
    not loaded yet (scikit-learn's OpenMP loads with the model), through threadpoolctl for those
    already loaded (numpy's BLAS)."""
    for name in THREAD_VARIABLES:
        os.environ.setdefault(name, str(threads))
    threadpool_limits(limits=int(os.environ["OMP_NUM_THREADS"]))


def _uvicorn_config(app: Any, config: Config, **options: Any) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        http=GuardedProtocol,
        log_config=None,  # our logging set-up stands; uvicorn's own lines go through it
        access_log=False,  # one access line per request comes from the service itself
        timeout_graceful_shutdown=config.serve.shutdown_timeout_s,  # type: ignore[arg-type]  # a float works: wait_for
        lifespan="on",
        # uvicorn counts the new connection itself: serve.max_connections are served, the next is refused
        limit_concurrency=config.serve.max_connections + 1,
        **options,
    )


class _Server(uvicorn.Server):
    """uvicorn's server (one worker), ending with exit code 0 on SIGTERM/SIGINT and waking
    the model watcher on SIGHUP.

    uvicorn re-raises the signal it caught once it has shut down, so that a process killed by
    SIGTERM reports it; a service stopped on purpose should exit 0 instead.
    """

    def __init__(self, config: uvicorn.Config, holder: Any) -> None:
        super().__init__(config)
        self.holder = holder

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        handled = {signal.SIGINT: self.handle_exit, signal.SIGTERM: self.handle_exit, signal.SIGHUP: self._wake}
        originals = {number: signal.signal(number, handler) for number, handler in handled.items()}
        try:
            yield
        finally:
            for number, handler in originals.items():
                signal.signal(number, handler)

    def _wake(self, number: int, frame: Any) -> None:
        self.holder.wake()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await self._take_waiting_connections(sockets or [])
        await super().shutdown(sockets)

    async def _take_waiting_connections(self, sockets: list[socket.socket]) -> None:
        """Accept what the kernel holds for the listening sockets before they close: closing
        them would reset those connections, whose requests the clients have already sent."""
        loop = asyncio.get_running_loop()
        waiting = []
        for sock in sockets:
            sock.setblocking(False)
            with contextlib.suppress(OSError):
                while True:
                    waiting.append(sock.accept()[0])
        for connection in waiting:
            await loop.connect_accepted_socket(self._new_protocol, connection)

    def _new_protocol(self) -> asyncio.Protocol:
        return self.config.http_protocol_class(  # type: ignore[call-arg]
            config=self.config, server_state=self.server_state, app_state=self.lifespan.state
        )


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise ChurnError(
            f"cannot listen on {host}:{port} ({error.strerror}); choose another --port or --host"
        ) from None
    sock.set_inheritable(True)
    return sock


def warn_if_open(host: str) -> bool:
    """Warn (and say so) when a non-loopback address is served without a token."""
    if _is_loopback(host) or os.environ.get(TOKEN_VARIABLE):
        return False
    logger.warning("serving on %s without %s: anyone who reaches this port can score", host, TOKEN_VARIABLE)
    return True


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False

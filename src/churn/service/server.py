"""`python main.py serve`: the application on uvicorn, with the signals a service needs.

SIGTERM or SIGINT: stop accepting, finish the requests in flight, exit 0 (within 10 s).
SIGHUP: look for a new run at once instead of within half a second. With `--workers N`,
uvicorn's supervisor starts N processes, each loading the run itself; Prometheus values are
then summed across them through files in a temporary folder.
"""

from __future__ import annotations

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
from uvicorn.supervisors import Multiprocess

from churn.config import Config, load_config
from churn.errors import ChurnError
from churn.logs import configure_logging
from churn.scoring import load_run
from churn.service.app import create_app
from churn.service.deps import TOKEN_VARIABLE

logger = logging.getLogger("churn.service")

SHUTDOWN_SECONDS = 8  # in-flight requests get this long; the process is gone well within 10 s
_ENV_CONFIG, _ENV_RUN = "CHURN_SERVE_CONFIG", "CHURN_SERVE_RUN"
LOG_LEVEL_VARIABLE = "CHURN_LOG_LEVEL"


def serve(config: Config, host: str, port: int, workers: int, run: str | None) -> None:
    """Serve until SIGTERM or SIGINT.

    Raises:
        ChurnError: a pinned run cannot be loaded, or the port cannot be bound.
    """
    if run is not None:
        load_run(config.paths.models_dir, run)  # a pinned run that cannot load is an error now, not a 503 later
    warn_if_open(host)
    sock = _bind(host, port)
    logger.info("listening on http://%s:%d (%d worker(s)); following %s", host, port, workers,
                f"run {run}" if run else f"{config.paths.models_dir}/latest")  # fmt: skip
    if workers == 1:
        app = create_app(config, run)
        _Server(_uvicorn_config(app), app.state.churn.holder).run(sockets=[sock])
        logger.info("stopped")
        return
    _serve_workers(config, run, workers, sock)


def _serve_workers(config: Config, run: str | None, workers: int, sock: socket.socket) -> None:
    with tempfile.TemporaryDirectory(prefix="churn-metrics-") as metrics_dir:
        # Read by the worker processes when they start (spawned, so they import afresh).
        os.environ |= {"PROMETHEUS_MULTIPROC_DIR": metrics_dir, _ENV_CONFIG: str(config.source.resolve())}
        os.environ[_ENV_RUN] = run or ""
        settings = _uvicorn_config("churn.service.server:app_from_environment", factory=True, workers=workers)
        # uvicorn's supervisor: SIGTERM/SIGINT stop the workers gracefully; SIGHUP restarts them,
        # and each reloads the run latest names.
        Multiprocess(settings, sockets=[sock]).run()


def app_from_environment() -> Any:
    """The application of one worker process, from what the supervisor put in the environment."""
    configure_logging(os.environ.get(LOG_LEVEL_VARIABLE, "info"))
    return create_app(load_config(Path(os.environ[_ENV_CONFIG])), os.environ.get(_ENV_RUN) or None)


def _uvicorn_config(app: Any, **options: Any) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        log_config=None,  # our logging set-up stands; uvicorn's own lines go through it
        access_log=False,  # one access line per request comes from the service itself
        timeout_graceful_shutdown=SHUTDOWN_SECONDS,
        lifespan="on",
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

"""A throwaway PostgreSQL server for the tests: the machine's own initdb and pg_ctl, run as an
unprivileged user (nobody, when the tests run as root), listening on loopback on a free port,
its data and socket in a temporary folder, stopped and removed after.

Where the programs are absent the tests that need a server are skipped, saying so; with
CHURN_REQUIRE_POSTGRES=1 (set by .ci/run) they fail instead, so that CI cannot pass by skipping.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pytest
from support import free_port

USER = "churn"
PASSWORD = "pw-Zq8-never-printed"  # a value no other text holds: grepped for in every output


def find_programs() -> Path | None:
    """The folder holding initdb and pg_ctl: on PATH, or Debian's /usr/lib/postgresql/N/bin."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).parent
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(folder) / "initdb").is_file() and (Path(folder) / "pg_ctl").is_file():
            return Path(folder)
    return None


def skip_or_fail(reason: str) -> None:
    if os.environ.get("CHURN_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"{reason}, and CHURN_REQUIRE_POSTGRES=1 says these tests must run")
    pytest.skip(reason)


@dataclass(frozen=True)
class Postgres:
    port: int
    folder: Path

    def url(self, database: str = "postgres", password: bool = False) -> str:
        user = f"{USER}:{PASSWORD}" if password else USER
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

    def connect(self):  # the tests' own connection, with the password
        import adbc_driver_postgresql.dbapi as driver

        return driver.connect(self.url(password=True))

    def load(self, table: str, data: pa.Table) -> None:
        """Create (or replace) a table holding `data`."""
        with self.connect() as connection:
            cursor = connection.cursor()
            cursor.execute(f'DROP TABLE IF EXISTS "{table}"')
            cursor.adbc_ingest(table, data, mode="create")
            connection.commit()

    def execute(self, sql: str) -> None:
        """A statement outside a transaction (VACUUM cannot run inside one)."""
        with self.connect() as connection:
            connection.adbc_connection.set_autocommit(True)
            connection.cursor().execute(sql)

    def read(self, sql: str) -> pa.Table:
        with self.connect() as connection:
            cursor = connection.cursor()
            cursor.execute(sql)
            return cursor.fetch_arrow_table()


def _as_server_user(command: list[str]) -> list[str]:
    # initdb refuses to run as root; nobody owns the data folder instead
    return ["runuser", "-u", "nobody", "--", *command] if os.geteuid() == 0 else command


@contextmanager
def running_postgres() -> Iterator[Postgres]:
    programs = find_programs()
    if programs is None:
        skip_or_fail("PostgreSQL's initdb and pg_ctl are not installed (Debian: apt-get install postgresql)")
    assert programs is not None
    folder = Path(tempfile.mkdtemp(prefix="churn-pg-"))
    try:
        password_file = folder / "password"
        password_file.write_text(PASSWORD)
        if os.geteuid() == 0:
            shutil.chown(folder, "nobody")
            shutil.chown(password_file, "nobody")
        data = folder / "data"
        init = [str(programs / "initdb"), "-D", str(data), "-U", USER, "--auth=scram-sha-256",
                f"--pwfile={password_file}", "-E", "UTF8", "--no-sync"]  # fmt: skip
        subprocess.run(_as_server_user(init), check=True, capture_output=True, timeout=120)
        port = free_port()
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {folder} -c fsync=off -c full_page_writes=off"
        start = [str(programs / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w",
                 "-t", "60", "start"]  # fmt: skip
        subprocess.run(_as_server_user(start), check=True, capture_output=True, timeout=90)
        try:
            yield Postgres(port, folder)
        finally:
            stop = [str(programs / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]
            subprocess.run(_as_server_user(stop), capture_output=True, timeout=60, check=False)
    finally:
        shutil.rmtree(folder, ignore_errors=True)

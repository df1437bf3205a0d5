"""A throw-away PostgreSQL cluster for tests, from the Debian ``postgresql`` package.

:class:`PostgresCluster` runs ``initdb`` in a temporary folder and starts the
server with ``pg_ctl`` on 127.0.0.1 at a free port (and a unix socket in that
folder), with ``fsync`` off: nothing in it outlives the test session. ``initdb``
refuses to run as root, so as root the cluster runs as the ``postgres`` system
user (``runuser``). :meth:`PostgresCluster.create_database` makes a fresh, empty
database and gives its ``postgresql://`` URL: one per test, so tests never see
each other's rows. Trust authentication on loopback only; the superuser is
``postgres``.

A missing package is an error naming it (``./scripts/setup --dev`` installs it),
like the other helpers of this folder.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.support.net import HOST, free_port

SUPERUSER = "postgres"
_counter = itertools.count(1)


def postgres_bin() -> Path:
    """The folder of the newest installed PostgreSQL's programs."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parent.parent.name),
    )
    if not found:
        raise RuntimeError(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): "
            "apt-get install postgresql, or run ./scripts/setup --dev"
        )
    return Path(found[-1]).parent


class PostgresCluster:
    """One running cluster; use as a context manager (stopped and removed at exit)."""

    def __init__(self, folder: Path | None = None, port: int | None = None) -> None:
        """A cluster in ``folder`` (made; a temporary one by default), listening on
        127.0.0.1:``port`` (a free one by default); the folder goes at :meth:`stop`."""
        self.bin = postgres_bin()
        if folder is None:
            folder = Path(tempfile.mkdtemp(prefix="ms-pg-"))
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.data = self.folder / "data"
        self.port = port or free_port("tcp")
        self._as_root = os.geteuid() == 0
        self._started = False

    @classmethod
    def running(cls, folder: Path, port: int) -> PostgresCluster:
        """The cluster a previous process started in ``folder`` (to stop it)."""
        cluster = cls(folder, port)
        cluster._started = True
        return cluster

    def __enter__(self) -> PostgresCluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        command = list(args)
        if self._as_root:
            command = ["runuser", "-u", SUPERUSER, "--", *command]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)

    def _checked(self, *args: str, timeout: float = 60) -> str:
        done = self._run(*args, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed: {done.stdout}{done.stderr}")
        return done.stdout

    def start(self) -> None:
        if self._as_root:
            user = pwd.getpwnam(SUPERUSER)
            os.chown(self.folder, user.pw_uid, user.pw_gid)
        self._checked(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            SUPERUSER,
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        options = (
            f"-c listen_addresses={HOST} -p {self.port} -k {self.folder}"
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            " -c max_connections=200"
        )
        self._checked(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.folder / "server.log"),
            "-w",
            "-t",
            "30",
            "start",
        )
        self._started = True

    def stop(self) -> None:
        if self._started:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
            self._started = False
        shutil.rmtree(self.folder, ignore_errors=True)

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run ``sql`` as the superuser; its output (tuples only, unaligned)."""
        return self._checked(
            str(self.bin / "psql"),
            "-h",
            str(self.folder),
            "-p",
            str(self.port),
            "-U",
            SUPERUSER,
            "-d",
            database,
            "-v",
            "ON_ERROR_STOP=1",
            "-At",
            "-c",
            sql,
        )

    def url(self, database: str, user: str = SUPERUSER) -> str:
        return f"postgresql://{user}@{HOST}:{self.port}/{database}"

    def create_database(self, prefix: str = "test") -> str:
        """A fresh empty database; its URL."""
        name = f"{prefix}_{os.getpid()}_{next(_counter)}"
        self.psql(f"CREATE DATABASE {name}")
        return self.url(name)

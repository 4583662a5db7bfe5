"""A throwaway PostgreSQL cluster of the tests' own, so one of them may stop and restart it.

The shared server on 5432 serves every other test (and other people's); restarting it
would fail them. `own_cluster()` runs `initdb` into a temporary folder and `pg_ctl` on a
free port of 127.0.0.1, as the `postgres` OS user when the tests run as root (PostgreSQL
refuses root), with trust authentication (nothing leaves 127.0.0.1) and fsync off (it is
thrown away). Tests skip, naming why, when `initdb` is not installed or cannot be run.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

INITDB_OPTIONS = ("-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")
# docs/operations.md "Point-in-time recovery": each finished WAL segment copied to the
# archive folder, never over one already there.
ARCHIVE_COMMAND = "test ! -f {archive}/%f && cp %p {archive}/%f"


def _bindir() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(os.path.realpath(found)).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(versions[-1]).parent if versions else None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Cluster:
    bindir: Path
    data: Path
    port: int
    as_user: list[str]  # the command prefix that runs as the cluster's owner
    settings: tuple[str, ...] = ()  # more `-c name=value` options at every start

    def url(self, database: str = "postgres", driver: str = "postgresql+psycopg") -> str:
        return f"{driver}://postgres@127.0.0.1:{self.port}/{database}"

    def _ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*self.as_user, str(self.bindir / "pg_ctl"), "-D", str(self.data), *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=check,
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c wal_level=replica -c max_wal_senders=2"
        )
        for setting in self.settings:
            options += f" -c {setting}"
        self._ctl("-o", options, "-l", str(self.data / "server.log"), "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._ctl("-m", mode, "-w", "stop")

    def createdb(self, name: str, template: str = "template1") -> str:
        with psycopg.connect(self.url(driver="postgresql"), autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return self.url(name)

    def run(self, tool: str, *args: str, **kwargs) -> subprocess.CompletedProcess:
        """A client tool of the same version (pg_dump, pg_restore, pg_basebackup...)."""
        return subprocess.run(
            [*self.as_user, str(self.bindir / tool), *args],
            capture_output=True,
            text=True,
            timeout=120,
            **kwargs,
        )


def _owner() -> tuple[list[str], int | None, int | None]:
    if os.geteuid() != 0:
        return [], None, None
    try:
        postgres = pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("running as root and there is no `postgres` OS user to own a cluster")
    runuser = shutil.which("runuser")
    if runuser is None:
        pytest.skip("running as root without `runuser` to start PostgreSQL as `postgres`")
    return [runuser, "-u", "postgres", "--"], postgres.pw_uid, postgres.pw_gid


@contextmanager
def own_cluster(archive: bool = False) -> Iterator[Cluster]:
    """With `archive`, WAL archiving is on (archive_mode, ARCHIVE_COMMAND) into the folder
    `wal-archive` beside the data directory."""
    bindir = _bindir()
    if bindir is None:
        pytest.skip("initdb is not installed: no throwaway PostgreSQL cluster to restart")
    as_user, uid, gid = _owner()
    home = Path(tempfile.mkdtemp(prefix="crm-faults-pg-"))
    data, wal_archive = home / "data", home / "wal-archive"
    data.mkdir()
    wal_archive.mkdir()
    if uid is not None:
        for path in (home, data, wal_archive):
            os.chown(path, uid, gid)
    init = subprocess.run(
        [*as_user, str(bindir / "initdb"), "-D", str(data), *INITDB_OPTIONS],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if init.returncode != 0:
        shutil.rmtree(home, ignore_errors=True)
        pytest.skip(f"initdb failed: {init.stderr.strip()[-300:]}")
    settings = ()
    if archive:
        command = ARCHIVE_COMMAND.format(archive=wal_archive)
        settings = ("archive_mode=on", f"archive_command='{command}'")
    cluster = Cluster(bindir, data, free_port(), as_user, settings)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster._ctl("-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(home, ignore_errors=True)

"""The restore drill of docs/operations.md, run for real on the tests' own clusters: a
logical dump restored into a new database, a physical base backup (pg_basebackup, WAL
streamed) started as a second server, and point-in-time recovery: a base backup of a
cluster archiving its WAL, restored by ops/restore-to-point.sh up to a named restore point
and up to a time, holding exactly the referrals committed before the target, at the
schema this code expects, and ready for the app."""

from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from tests.conftest import postgres_only
from tests.faults.cluster import Cluster, free_port, own_cluster
from tests.faults.processes import ROOT, Gunicorn, app_env
from tests.faults.support import scalar, submit

pytestmark = [pytest.mark.faults, postgres_only]
CHECKED = ("referrals", "patients", "audit_events", "outbox_messages", "alembic_version")


def _snapshot(url: str) -> dict[str, int]:
    return {table: scalar(url, f"SELECT count(*) FROM {table}") for table in CHECKED}


def test_a_dump_and_a_base_backup_restore_what_was_committed(cluster, seeded, tmp_path):
    web = Gunicorn(app_env(seeded.url, tmp_path), tmp_path / "gunicorn.log").start()
    try:
        for _ in range(3):
            submit(web, seeded.agency)
    finally:
        web.stop()
    before = _snapshot(seeded.url)
    assert before["referrals"] == 3
    version = scalar(seeded.url, "SELECT version_num FROM alembic_version")
    name = seeded.url.rsplit("/", 1)[1]
    home = cluster.data.parent

    dump = home / f"{name}.dump"
    port = ("-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres")
    done = cluster.run("pg_dump", *port, "-Fc", "-f", str(dump), name)
    assert done.returncode == 0, done.stderr
    restored = cluster.createdb(f"restored_{uuid.uuid4().hex[:6]}", template="template0")
    done = cluster.run(
        "pg_restore", *port, "--no-owner", "-d", restored.rsplit("/", 1)[1], str(dump)
    )
    assert done.returncode == 0, done.stderr
    assert _snapshot(restored) == before

    backup = home / "basebackup"
    done = cluster.run("pg_basebackup", *port, "-D", str(backup), "-X", "stream", "-c", "fast")
    assert done.returncode == 0, done.stderr
    copy = Cluster(cluster.bindir, backup, free_port(), cluster.as_user)
    copy.start()
    try:
        copied = copy.url(name)
        assert _snapshot(copied) == before
        assert scalar(copied, "SELECT version_num FROM alembic_version") == version
    finally:
        copy.stop("immediate")


# --- point-in-time recovery -----------------------------------------------------------------


def _copy_template(cluster: Cluster, source: Cluster) -> str:
    """The migrated, seeded template of the session's cluster, copied into `source` (a
    pg_dump -Fc restored with pg_restore) as the database `drill`."""
    dump = source.data.parent / "template.dump"
    port = ("-h", "127.0.0.1", "-U", "postgres")
    done = cluster.run("pg_dump", *port, "-p", str(cluster.port), "-Fc", "-f", str(dump),
                       "faults_template")  # fmt: skip
    assert done.returncode == 0, done.stderr
    url = source.createdb("drill", template="template0")
    done = source.run("pg_restore", *port, "-p", str(source.port), "--no-owner", "-d", "drill",
                      str(dump))  # fmt: skip
    assert done.returncode == 0, done.stderr
    return url


def _referrals(url: str) -> set[int]:
    return set(scalar(url, "SELECT coalesce(array_agg(id), '{}') FROM referrals"))


def _archive_all(source: Cluster, url: str, within: float = 30) -> None:
    """Close the current WAL segment and wait until archive_command has copied it."""
    segment = scalar(url, "SELECT pg_walfile_name(pg_switch_wal())")
    archived = source.data.parent / "wal-archive" / segment
    deadline = time.monotonic() + within
    while not archived.exists():
        assert time.monotonic() < deadline, f"{segment} was never archived"
        time.sleep(0.1)


def _restore(source: Cluster, name: str, *target: str) -> Cluster:
    """ops/restore-to-point.sh into a new data directory, started on a free port and
    waited for until recovery has promoted it."""
    home = source.data.parent
    data = home / name
    done = subprocess.run(
        [*source.as_user, "sh", str(ROOT / "ops" / "restore-to-point.sh"),
         str(home / "base"), str(home / "wal-archive"), str(data), *target],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    restored = Cluster(source.bindir, data, free_port(), source.as_user)
    try:
        restored.start()
    except subprocess.CalledProcessError as failed:
        raise AssertionError(_server_log(data)) from failed
    deadline = time.monotonic() + 60
    while scalar(restored.url("drill"), "SELECT pg_is_in_recovery()"):
        assert time.monotonic() < deadline, _server_log(data)
        time.sleep(0.1)
    return restored


def _server_log(data: Path) -> str:
    return (data / "server.log").read_text(errors="replace")[-3000:]


def test_point_in_time_recovery_restores_exactly_what_was_committed_before_the_target(
    cluster, template, tmp_path
):
    with own_cluster(archive=True) as source:
        url = _copy_template(cluster, source)
        web = Gunicorn(app_env(url, tmp_path), tmp_path / "gunicorn.log").start()
        try:
            # referrals in the base backup, then in the archived WAL before each target
            in_backup = {submit(web, template.agency)["id"] for _ in range(2)}
            done = source.run(
                "pg_basebackup", "-h", "127.0.0.1", "-p", str(source.port), "-U", "postgres",
                "-D", str(source.data.parent / "base"), "-Ft", "-z", "-X", "stream", "-c", "fast",
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
            before_point = in_backup | {submit(web, template.agency)["id"]}
            scalar(url, "SELECT pg_create_restore_point('drill-before-release')")
            before_time = before_point | {submit(web, template.agency)["id"]}
            target = scalar(url, "SELECT clock_timestamp()").isoformat(sep=" ")
            after = {submit(web, template.agency)["id"] for _ in range(2)}
        finally:
            web.stop()
        assert _referrals(url) == before_time | after
        _archive_all(source, url)

        by_name = _restore(source, "restored-by-name", "--name", "drill-before-release")
        try:
            assert _referrals(by_name.url("drill")) == before_point
        finally:
            by_name.stop("immediate")

        by_time = _restore(source, "restored-by-time", "--time", target)
        try:
            restored = by_time.url("drill")
            assert _referrals(restored) == before_time
            head = ScriptDirectory(str(ROOT / "migrations")).get_current_head()
            assert scalar(restored, "SELECT version_num FROM alembic_version") == head
            web = Gunicorn(app_env(restored, tmp_path), tmp_path / "restored.log").start()
            try:
                ready = web.request("GET", "/readyz")
            finally:
                web.stop()
            assert ready.status == 200, ready.body
            assert ready.body["status"] == "ready"
        finally:
            by_time.stop("immediate")

"""The restore drill of docs/operations.md, run for real on the tests' own cluster: a
logical dump restored into a new database, and a physical base backup (pg_basebackup,
WAL streamed) started as a second server; both hold what was committed, at the schema
this code expects. (Point-in-time recovery replays archived WAL on top of such a base
backup; the drill stops at the base backup.)"""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import postgres_only
from tests.faults.cluster import Cluster, free_port
from tests.faults.processes import Gunicorn, app_env
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

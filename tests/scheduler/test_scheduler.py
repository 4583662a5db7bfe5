"""The scheduler process: its jobs and their settings, and a one-shot run on a real database."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from apscheduler.triggers.interval import IntervalTrigger

from crm.scheduler.__main__ import build_scheduler

ROOT = Path(__file__).resolve().parents[2]


class _Jobs:
    """Stands in for crm.scheduler.jobs.Jobs: the scheduler only needs the callables."""

    def dispatch(self) -> int:
        return 0

    def sweep_nudges(self) -> int:
        return 0

    def reconcile(self) -> int:
        return 0

    def purge_idempotency_keys(self) -> int:
        return 0

    def sweep_documents(self) -> int:
        return 0

    def sweep_uploads(self) -> int:
        return 0

    def commission_payable(self) -> int:
        return 0

    def deliver_webhooks(self) -> int:
        return 0

    def reconcile_webhooks(self) -> int:
        return 0

    def retention(self) -> int:
        return 0


@pytest.fixture
def started_jobs():
    """Start the (blocking) scheduler paused in a thread, so job defaults are applied."""
    scheduler = build_scheduler(_Jobs(), dispatch_seconds=5, sweep_seconds=60)
    thread = threading.Thread(target=scheduler.start, kwargs={"paused": True}, daemon=True)
    thread.start()
    for _ in range(200):
        if scheduler.running and len(scheduler.get_jobs()) == 10:
            break
        threading.Event().wait(0.01)
    try:
        yield {job.id: job for job in scheduler.get_jobs()}
    finally:
        scheduler.shutdown(wait=False)
        thread.join(timeout=5)


def test_the_scheduler_runs_sweep_dispatch_reconcile_purge_and_the_document_sweep(started_jobs):
    assert set(started_jobs) == {
        "dispatch",
        "sweep",
        "reconcile",
        "purge",
        "documents",
        "uploads",
        "commission",
        "webhooks",
        "webhooks-reconcile",
        "retention",
    }
    intervals = {
        job_id: job.trigger.interval
        for job_id, job in started_jobs.items()
        if isinstance(job.trigger, IntervalTrigger)
    }
    assert intervals == {
        "dispatch": timedelta(seconds=5),
        "sweep": timedelta(seconds=60),
        "reconcile": timedelta(seconds=60),
        "purge": timedelta(hours=1),
        "documents": timedelta(hours=1),
        "uploads": timedelta(hours=1),
        "commission": timedelta(hours=1),
        "webhooks": timedelta(seconds=2),
        "webhooks-reconcile": timedelta(seconds=60),
        "retention": timedelta(hours=6),
    }


def test_jobs_coalesce_never_overlap_and_have_a_misfire_grace(started_jobs):
    for job in started_jobs.values():
        assert job.coalesce is True
        assert job.max_instances == 1
    grace = {job_id: job.misfire_grace_time for job_id, job in started_jobs.items()}
    assert grace == {
        "dispatch": 10,
        "sweep": 30,
        "reconcile": 30,
        "purge": 600,
        "documents": 600,
        "uploads": 600,
        "commission": 600,
        "webhooks": 10,
        "webhooks-reconcile": 30,
        "retention": 3600,
    }


def test_the_job_callables_are_the_ones_given():
    jobs = _Jobs()
    scheduler = build_scheduler(jobs, dispatch_seconds=2.5, sweep_seconds=30)
    by_id = {job.id: job for job in scheduler.get_jobs()}
    assert by_id["dispatch"].func == jobs.dispatch
    assert by_id["sweep"].func == jobs.sweep_nudges
    assert by_id["documents"].func == jobs.sweep_documents
    assert by_id["uploads"].func == jobs.sweep_uploads
    assert by_id["commission"].func == jobs.commission_payable
    assert by_id["retention"].func == jobs.retention
    assert by_id["dispatch"].trigger.interval == timedelta(seconds=2.5)
    assert by_id["sweep"].trigger.interval == timedelta(seconds=30)


def _env(database: Path, outbox: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("CRM_") or key == "CRM_CONFIG_FILE"
    }
    env.pop("CRM_CONFIG_FILE", None)
    return {
        **env,
        "CRM_DATABASE_URL": f"sqlite:///{database}",
        "CRM_OUTBOX_FILE_DIR": str(outbox),
        "CRM_LOG_LEVEL": "INFO",
        "CRM_QUIET_HOURS": "00:00-00:00",
    }


def test_once_runs_against_a_migrated_sqlite_database_and_exits_0(tmp_path):
    database, outbox = tmp_path / "crm.sqlite3", tmp_path / "outbox"
    env = _env(database, outbox)
    migrate = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert migrate.returncode == 0, migrate.stderr
    now = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")
    with sqlite3.connect(database) as conn:
        conn.execute(
            "INSERT INTO outbox_messages (idempotency_key, audience, channel, kind, language, "
            "to_address, time_zone, subject, body_text, status, attempts, next_attempt_at, "
            "created_at, updated_at) VALUES ('once:1', 'coordinator', 'email', 'ad_hoc', 'en', "
            "'team@hospital.example', 'UTC', 'Hello', 'A test message', 'queued', 0, ?, ?, ?)",
            (now, now, now),
        )
    run = subprocess.run(
        [sys.executable, "-m", "crm.scheduler", "--once"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert "failed" not in run.stderr, run.stderr
    assert "once: 0 settled, 0 nudges fired, 1 sent" in run.stderr
    with sqlite3.connect(database) as conn:
        assert conn.execute("SELECT status FROM outbox_messages").fetchall() == [("sent",)]
    [line] = (outbox / "email.jsonl").read_text().splitlines()
    assert json.loads(line)["text"].startswith("A test message")


def test_once_exits_0_with_nothing_to_do(tmp_path):
    database, outbox = tmp_path / "crm.sqlite3", tmp_path / "outbox"
    env = _env(database, outbox)
    subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    run = subprocess.run(
        [sys.executable, "-m", "crm.scheduler", "--once"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert "once: 0 settled, 0 nudges fired, 0 sent" in run.stderr


def test_once_exits_non_zero_when_a_job_fails(tmp_path):
    """An unmigrated database: every job raises; the failure is logged and reported."""
    env = _env(tmp_path / "empty.sqlite3", tmp_path / "outbox")
    run = subprocess.run(
        [sys.executable, "-m", "crm.scheduler", "--once"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1
    assert "job(s) failed" in run.stderr and "no such table" in run.stderr
    lines = [json.loads(line) for line in run.stderr.splitlines()]  # every line JSON
    assert lines[-1]["message"] == "once: 5 job(s) failed; see the lines above"

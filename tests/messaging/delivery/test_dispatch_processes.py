"""Effect-once sending under at-least-once execution, with real processes on PostgreSQL.

Several `python -m crm.scheduler --once` processes share one scratch database and the
fake Twilio server; some are killed with SIGKILL mid-batch. Every message must reach the
provider exactly once and end `sent`.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.conftest import ON_POSTGRES, TEST_DATABASE_URL, postgres_only
from tests.fakes.twilio_server import FakeTwilio, running_fake_twilio

ROOT = Path(__file__).resolve().parents[3]
FROM_NUMBER = "+15005550006"
pytestmark = postgres_only


def _admin_url() -> str:
    return (TEST_DATABASE_URL or "").replace("postgresql+psycopg://", "postgresql://")


@pytest.fixture(scope="module")
def scratch_url() -> Iterator[str]:
    if not ON_POSTGRES:
        pytest.skip("needs PostgreSQL")
    name = f"crm_dispatch_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(_admin_url(), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = TEST_DATABASE_URL.rsplit("/", 1)[0]
    url = f"{base}/{name}"
    subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"],
        cwd=ROOT,
        env={**os.environ, "CRM_DATABASE_URL": url, "CRM_LOG_LEVEL": "WARNING"},
        check=True,
        capture_output=True,
    )
    try:
        yield url
    finally:
        with psycopg.connect(_admin_url(), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def seed(url: str, count: int) -> list[str]:
    bodies = [f"test message {uuid.uuid4().hex[:8]} #{i}" for i in range(count)]
    with psycopg.connect(_plain(url)) as conn:
        conn.execute("TRUNCATE outbox_messages CASCADE")  # and what refers to them
        with conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO outbox_messages (idempotency_key, audience, channel, kind, "
                "language, to_address, time_zone, body_text, status, attempts, "
                "next_attempt_at, created_at, updated_at) VALUES (%s, 'coordinator', 'sms', "
                "'ad_hoc', 'en', %s, 'UTC', %s, 'queued', 0, now(), now(), now())",
                [(f"seed:{i}", f"+49151123450{i % 40:02d}", body) for i, body in enumerate(bodies)],
            )
    return bodies


def outbox_statuses(url: str) -> Counter:
    with psycopg.connect(_plain(url)) as conn:
        return Counter(row[0] for row in conn.execute("SELECT status FROM outbox_messages"))


def _describe(url: str, bodies: set[str]) -> list[tuple]:
    with psycopg.connect(_plain(url)) as conn:
        return conn.execute(
            "SELECT status, attempts, claimed_by, claimed_at, now(), provider_id, error_message "
            "FROM outbox_messages WHERE body_text = ANY(%s)",
            (list(bodies),),
        ).fetchall()


def dispatcher(url: str, fake: FakeTwilio, log_level: str = "WARNING") -> subprocess.Popen:
    env = {
        **os.environ,
        "CRM_DATABASE_URL": url,
        "CRM_TWILIO_ACCOUNT_SID": fake.account_sid,
        "CRM_TWILIO_AUTH_TOKEN": fake.auth_token or "",
        "CRM_TWILIO_FROM_NUMBER": FROM_NUMBER,
        "CRM_TWILIO_BASE_URL": fake.base_url,
        "CRM_DISPATCH_BATCH_SIZE": "5",
        "CRM_DISPATCH_STALE_SECONDS": "2",
        "CRM_LOG_LEVEL": log_level,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "crm.scheduler", "--once"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def bodies_at_provider(fake: FakeTwilio) -> Counter:
    return Counter(post.form["Body"] for post in fake.posts())


def test_four_dispatchers_at_once_send_every_message_exactly_once(scratch_url):
    bodies = seed(scratch_url, 400)
    with running_fake_twilio() as fake:
        processes = [dispatcher(scratch_url, fake) for _ in range(4)]
        for process in processes:
            _, errors = process.communicate(timeout=120)
            assert process.returncode == 0, errors.decode()
        sent = bodies_at_provider(fake)
    assert sorted(sent) == sorted(bodies)
    assert set(sent.values()) == {1}
    assert outbox_statuses(scratch_url) == Counter({"sent": 400})


def test_dispatchers_killed_mid_batch_lose_nothing_and_send_nothing_twice(scratch_url):
    bodies = seed(scratch_url, 150)
    rng = random.Random(20261127)
    with running_fake_twilio() as fake:
        fake.program(delay=0.03, times=None, method="POST")
        for _ in range(6):
            process = dispatcher(scratch_url, fake)
            time.sleep(rng.uniform(1.2, 2.2))
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
            process.stderr.close()
        # The scheduler reconciles every minute; here a few passes stand in for that. More
        # than one is needed when a killed process's last commit was still being flushed
        # to disk while the first pass looked.
        for _ in range(5):
            time.sleep(2.5)  # let the rows left in `sending` go stale
            final = dispatcher(scratch_url, fake)
            _, errors = final.communicate(timeout=120)
            assert final.returncode == 0, errors.decode()
            if set(outbox_statuses(scratch_url)) == {"sent"}:
                break
        sent = bodies_at_provider(fake)
    missing = set(bodies) - set(sent)
    assert not missing, f"lost: {_describe(scratch_url, missing)}"
    assert set(sent.values()) == {1}, "a message was sent twice"
    assert outbox_statuses(scratch_url) == Counter({"sent": 150})

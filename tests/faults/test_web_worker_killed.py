"""A gunicorn worker killed with SIGKILL in the middle of a submission, its rows written
but not committed: the transaction dies with it (nothing half-written), gunicorn starts a
new worker, and the client's retry with the same Idempotency-Key creates the referral
exactly once (a second retry replays the answer).

The request is held mid-transaction without any test-only code: the test locks the audit
table, so the submission's INSERT of its audit event (after the patient, the referral and
its first stage are written) waits on the lock until the worker is killed."""

from __future__ import annotations

import http.client
import os
import signal
import threading

import psycopg
import pytest

from tests.conftest import postgres_only
from tests.factories import referral_payload
from tests.faults.processes import Gunicorn, app_env
from tests.faults.support import gone, plain, scalar, stuck_backend

pytestmark = [pytest.mark.faults, postgres_only]


def test_a_worker_killed_mid_submission_leaves_nothing_and_the_retry_creates_it_once(
    seeded, tmp_path
):
    web = Gunicorn(app_env(seeded.url, tmp_path), tmp_path / "gunicorn.log").start()
    try:
        [worker] = web.worker_pids()
        body = referral_payload(agency_reference="KILLED-1")
        headers = seeded.agency.headers(**{"Idempotency-Key": "killed-worker-1"})
        outcome: dict[str, object] = {}

        def first_attempt() -> None:
            try:
                outcome["answer"] = web.request(
                    "POST", "/api/v1/referrals", body=body, headers=headers
                )
            except (http.client.HTTPException, OSError) as exc:
                outcome["error"] = exc

        audits = scalar(seeded.url, "SELECT count(*) FROM audit_events")
        with psycopg.connect(plain(seeded.url)) as locker:
            locker.execute("LOCK TABLE audit_events IN EXCLUSIVE MODE")
            client = threading.Thread(target=first_attempt)
            client.start()
            with psycopg.connect(plain(seeded.url), autocommit=True) as watcher:
                backend = stuck_backend(watcher)
            os.kill(worker, signal.SIGKILL)
            client.join(timeout=30)
            locker.rollback()  # the lock goes; the orphaned backend finds its client gone

        assert "error" in outcome, outcome  # the client saw the connection drop, no answer
        assert gone(seeded.url, backend)
        assert scalar(seeded.url, "SELECT count(*) FROM audit_events") == audits
        assert scalar(seeded.url, "SELECT count(*) FROM referrals") == 0
        assert scalar(seeded.url, "SELECT count(*) FROM patients") == 0
        assert scalar(seeded.url, "SELECT count(*) FROM idempotency_keys") == 0

        web.wait_serving()  # gunicorn's master has started a new worker
        assert web.worker_pids() != [worker]
        retried = web.request("POST", "/api/v1/referrals", body=body, headers=headers)
        assert retried.status == 201, retried.body
        again = web.request("POST", "/api/v1/referrals", body=body, headers=headers)
        assert again.status == 201
        assert again.headers.get("Idempotent-Replayed") == "true"
        assert again.body["id"] == retried.body["id"]
        assert scalar(seeded.url, "SELECT count(*) FROM referrals") == 1
    finally:
        web.stop()

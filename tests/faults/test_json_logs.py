"""Every line gunicorn (with config/gunicorn.conf.py) and the scheduler write is one JSON
object: gunicorn's own lines, the app's line per request, a request that crashes, a
request cut off by the worker timeout; and none holds a phone number, a name, a health
detail, an API key or a link token. See README "Logs"."""

from __future__ import annotations

import json
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import postgres_only
from tests.factories import referral_payload
from tests.faults.processes import Gunicorn, app_env, scheduler
from tests.faults.support import plain, scalar

pytestmark = [pytest.mark.faults, postgres_only]
KEYS = {"ts", "level", "logger", "message"}
REQUEST_KEYS = KEYS | {"request_id", "method", "route", "status", "duration_ms"}
PHONE = "+4915112345678"
LINK_TOKEN = "eyJyIjo0Mn0.c2VjcmV0LWxpbmstdG9rZW4"


def json_lines(log: Path) -> list[dict[str, Any]]:
    """Every line of the log, parsed; the test fails on the first that is not JSON."""
    parsed = []
    for line in log.read_text(errors="replace").splitlines():
        try:
            parsed.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"not a JSON line: {line!r}") from None
        assert set(parsed[-1]) >= KEYS, line
    assert parsed, "nothing was logged"
    return parsed


def never_in(log: Path, *secrets: str) -> None:
    text = log.read_text(errors="replace")
    for secret in secrets:
        assert secret not in text, f"{secret!r} reached the log"


def of_request(lines: list[dict[str, Any]], request_id: str) -> list[dict[str, Any]]:
    return [line for line in lines if line.get("request_id") == request_id]


def request_line(lines: list[dict[str, Any]], request_id: str) -> dict[str, Any]:
    [line] = [line for line in of_request(lines, request_id) if line["message"] == "request"]
    return line


def saved_rows(url: str) -> tuple[int, int]:
    return (scalar(url, "SELECT count(*) FROM patients"),
            scalar(url, "SELECT count(*) FROM referrals"))  # fmt: skip


def test_gunicorn_and_the_app_write_only_json_lines_even_for_a_crashing_request(seeded, tmp_path):
    log = tmp_path / "gunicorn.log"
    web = Gunicorn(app_env(seeded.url, tmp_path, LOG_LEVEL="INFO"), log).start()
    key = seeded.agency.secret
    payload = referral_payload(patient={"phone": PHONE})
    patient, notes = payload["patient"], payload["intake"]["notes"]
    try:
        created = web.request(
            "POST", "/api/v1/referrals", body=payload,
            headers=seeded.agency.headers(**{"Idempotency-Key": uuid.uuid4().hex,
                                             "X-Request-ID": "logs-submit"}),
        )  # fmt: skip
        assert created.status == 201, created.body
        web.request("GET", f"/api/v1/referrals/{created.body['id']}",
                    headers=seeded.agency.headers(**{"X-Request-ID": "logs-read"}))  # fmt: skip
        web.request("GET", f"/p/{LINK_TOKEN}?token={LINK_TOKEN}",
                    headers={"X-Request-ID": "logs-link"})  # fmt: skip
        web.request("GET", f"/nowhere?api_key={key}", headers={"X-Request-ID": "logs-lost"})

        # a schema the code does not expect (drift): the statement fails, unhandled
        with psycopg.connect(plain(seeded.url), autocommit=True) as conn:
            conn.execute("ALTER TABLE referrals RENAME COLUMN intake_notes TO logs_drift")
        crashed = web.request(
            "POST", "/api/v1/referrals", body=referral_payload(patient={"phone": PHONE}),
            headers=seeded.agency.headers(**{"Idempotency-Key": uuid.uuid4().hex,
                                             "X-Request-ID": "logs-crash"}),
        )  # fmt: skip
        assert crashed.status == 500, crashed.body
    finally:
        web.stop()

    lines = json_lines(log)
    gunicorn = [line["message"] for line in lines if line["logger"] == "gunicorn.error"]
    assert any(m.startswith("Listening at: http://127.0.0.1") for m in gunicorn), gunicorn
    assert any(m.startswith("Booting worker") for m in gunicorn), gunicorn
    assert "Shutting down: Master" in gunicorn
    assert not [line for line in lines if line["logger"] == "gunicorn.access"]

    submitted = request_line(lines, "logs-submit")
    assert set(submitted) >= REQUEST_KEYS
    assert (submitted["route"], submitted["status"]) == ("/api/v1/referrals", 201)
    assert (submitted["actor_kind"], submitted["actor_id"]) == ("agency", seeded.agency.actor.id)
    read = request_line(lines, "logs-read")
    assert (read["route"], read["status"]) == ("/api/v1/referrals/<int:referral_id>", 200)
    assert request_line(lines, "logs-link")["route"] == "/p/<token>"
    lost = request_line(lines, "logs-lost")
    assert lost["status"] == 404 and "route" not in lost  # no URL rule matched

    crash = of_request(lines, "logs-crash")
    [error] = [line for line in crash if line["level"] == "ERROR"]
    assert "UndefinedColumn" in error["exception"] and "intake_notes" in error["exception"]
    assert error["route"] == "/api/v1/referrals"
    assert [line["status"] for line in crash if line["message"] == "request"] == [500]

    never_in(log, key, LINK_TOKEN, PHONE, PHONE[1:], patient["family_name"],
             patient["email"], patient["date_of_birth"], notes)  # fmt: skip


def test_a_request_cut_off_by_the_worker_timeout_still_leaves_a_json_line(seeded, tmp_path):
    log = tmp_path / "gunicorn.log"
    env = app_env(seeded.url, tmp_path, LOG_LEVEL="INFO")
    # the timeout counts a worker's boot too: 10 s leaves room for a loaded machine
    web = Gunicorn(env, log, options=("--timeout", "10")).start()
    before = saved_rows(seeded.url)
    payload = referral_payload(patient={"phone": PHONE})
    try:
        with psycopg.connect(plain(seeded.url)) as lock:
            lock.execute("LOCK TABLE referrals IN ACCESS EXCLUSIVE MODE")
            stuck = web.request(
                "POST", "/api/v1/referrals", body=payload, timeout=60,
                headers=seeded.agency.headers(**{"Idempotency-Key": uuid.uuid4().hex,
                                                 "X-Request-ID": "logs-stuck"}),
            )  # fmt: skip
            assert stuck.status == 500  # gunicorn's own answer as the aborted worker exits
            lock.rollback()
        web.wait_serving()  # a new worker took the aborted one's place
    finally:
        web.stop()
    assert saved_rows(seeded.url) == before  # nothing half-saved

    lines = json_lines(log)
    assert any(
        line["message"].startswith("WORKER TIMEOUT") and line["level"] == "CRITICAL"
        for line in lines
    ), [line["message"] for line in lines]
    [cut] = [
        line for line in of_request(lines, "logs-stuck")
        if line["message"].startswith("request cut off")
    ]  # fmt: skip
    assert cut["level"] == "ERROR"
    assert (cut["method"], cut["route"]) == ("POST", "/api/v1/referrals")
    assert cut["actor_kind"] == "agency" and cut["duration_ms"] >= 9000
    assert "crm/referrals" in cut["stack"]  # where it was stuck
    assert not [line for line in of_request(lines, "logs-stuck") if line["message"] == "request"]
    never_in(log, seeded.agency.secret, PHONE, PHONE[1:], payload["patient"]["family_name"],
             payload["intake"]["notes"])  # fmt: skip


def test_the_scheduler_writes_only_json_lines(seeded, tmp_path):
    log = tmp_path / "scheduler.log"
    env = app_env(seeded.url, tmp_path, LOG_LEVEL="INFO")
    process = scheduler(env, log, "--dispatch-seconds", "1", "--sweep-seconds", "1")
    try:
        deadline = time.monotonic() + 60
        while "scheduler started" not in log.read_text(errors="replace"):
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        time.sleep(2.5)  # a few ticks of the dispatcher and the sweep
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    lines = json_lines(log)
    messages = [line["message"] for line in lines]
    assert "scheduler started" in messages
    assert any(line["logger"].startswith("apscheduler") for line in lines), messages

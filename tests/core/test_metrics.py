"""Prometheus metrics: requests by route and status, what waits in the outbox and how
old it is, dispatch outcomes, scheduler jobs; one sum over every worker process."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

from prometheus_client.parser import text_string_to_metric_families

from crm.core import metrics
from crm.scheduler.jobs import Jobs
from tests.factories import referral_payload
from tests.helpers import API

ROOT = Path(__file__).resolve().parents[2]


def _samples(client, **headers) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.content_type.startswith("text/plain")
    found = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def _value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_requests_are_counted_by_route_pattern_and_status(client, factory):
    agency = factory.agency()
    route = {"method": "POST", "route": "/api/v1/referrals"}
    before = _value(_samples(client), "crm_http_requests_total", status="201", **route)
    client.post(f"{API}/referrals", json=referral_payload(), headers=agency.headers())
    client.post(f"{API}/referrals", json={}, headers=agency.headers())
    after = _samples(client)
    assert _value(after, "crm_http_requests_total", status="201", **route) == before + 1
    assert _value(after, "crm_http_requests_total", status="422", **route) >= 1
    assert _value(after, "crm_http_request_duration_seconds_count", **route) >= 2


def test_a_token_in_a_path_never_becomes_a_label(client):
    client.get("/p/secret-looking-token-123")
    response = client.get("/metrics")
    assert "secret-looking-token-123" not in response.get_data(as_text=True)


def test_the_outbox_depth_and_oldest_age_are_read_at_each_scrape(client, factory):
    factory.referral(factory.agency())  # its enquiry messages wait in the outbox
    samples = _samples(client)
    assert _value(samples, "crm_outbox_depth", status="queued") >= 1
    assert _value(samples, "crm_outbox_oldest_age_seconds", status="queued") >= 0
    assert _value(samples, "crm_webhook_deliveries_depth", status="pending") == 0


def test_dispatch_outcomes_are_counted_by_channel_and_status(client):
    before = _value(_samples(client), "crm_dispatch_outcomes_total", channel="sms", status="sent")
    metrics.count_dispatch(
        [SimpleNamespace(channel="sms", after="sent")] * 2
        + [SimpleNamespace(channel="email", after="failed")]
    )
    samples = _samples(client)
    assert _value(samples, "crm_dispatch_outcomes_total", channel="sms", status="sent") == (
        before + 2
    )
    assert _value(samples, "crm_dispatch_outcomes_total", channel="email", status="failed") >= 1


def test_scheduler_jobs_are_counted_with_their_outcome_and_duration(app, client):
    jobs = Jobs(app, "metrics-test")

    def tidy_up() -> int:
        return 3

    def broken() -> int:
        raise RuntimeError("boom")

    jobs._run(tidy_up)
    jobs._run(broken)
    samples = _samples(client)
    assert _value(samples, "crm_job_runs_total", job="tidy_up", outcome="ok") >= 1
    assert _value(samples, "crm_job_runs_total", job="broken", outcome="failed") >= 1
    assert _value(samples, "crm_job_duration_seconds_count", job="tidy_up") >= 1


def test_a_metrics_token_when_set_is_required(app, client):
    settings = app.config["CRM"]
    settings["METRICS_TOKEN"] = "scrape-secret"
    try:
        refused = client.get("/metrics")
        wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
        allowed = client.get("/metrics", headers={"Authorization": "Bearer scrape-secret"})
    finally:
        settings["METRICS_TOKEN"] = ""
    assert refused.status_code == wrong.status_code == 401
    assert refused.mimetype == "application/problem+json"
    assert allowed.status_code == 200


def test_every_worker_process_adds_to_one_sum(tmp_path):
    """Two processes count requests in one PROMETHEUS_MULTIPROC_DIR; a third scrapes."""
    script = textwrap.dedent(
        """
        import sys
        from crm import create_app
        app = create_app({"DATABASE_URL": "sqlite://"})
        client = app.test_client()
        if sys.argv[1] == "count":
            for _ in range(3):
                client.get("/healthz")
        else:
            print(client.get("/metrics").get_data(as_text=True))
        """
    )
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    run = [sys.executable, "-c", script]
    for _ in range(2):
        subprocess.run([*run, "count"], cwd=ROOT, env=env, check=True, timeout=120)
    scraped = subprocess.run(
        [*run, "scrape"], cwd=ROOT, env=env, check=True, timeout=120, capture_output=True
    ).stdout.decode()
    line = 'crm_http_requests_total{method="GET",route="/healthz",status="200"} 6.0'
    assert line in scraped

"""Prometheus metrics at `/metrics` (prometheus-client).

- Requests by method, route (the URL rule, so a token never becomes a label) and status,
  and their latency.
- The outbox and the webhook deliveries: how many wait, by status, and how old the oldest
  is: read from the database at each scrape, so every process agrees.
- Dispatch outcomes by channel and status, webhook attempts by outcome, scheduler job runs
  by outcome and their durations: counted where they happen, after their commit.

Under gunicorn (several worker processes) and beside the scheduler's process, set
PROMETHEUS_MULTIPROC_DIR to one empty folder for all of them (`make serve` does): every
process writes its counts there and a scrape of any worker sums them all. Without it,
a scrape shows the answering process's own counts. CRM_METRICS_TOKEN, when set, is the
bearer token a scraper must send.
"""

from __future__ import annotations

import hmac
import os
import time
from collections import Counter as Tally
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from flask import Blueprint, Flask, Response, current_app, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import bindparam, text
from sqlalchemy.exc import SQLAlchemyError

from crm.core.db import utcnow
from crm.core.errors import problem
from crm.extensions import db

metrics = Blueprint("metrics", __name__)

REQUESTS = Counter("crm_http_requests", "HTTP requests answered", ["method", "route", "status"])
LATENCY = Histogram(
    "crm_http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
DISPATCH = Counter(
    "crm_dispatch_outcomes", "Outbox messages settled by a dispatch", ["channel", "status"]
)
WEBHOOK_ATTEMPTS = Counter("crm_webhook_attempts", "Webhook POSTs by outcome", ["outcome"])
JOB_RUNS = Counter("crm_job_runs", "Scheduler job runs by outcome", ["job", "outcome"])
JOB_DURATION = Histogram(
    "crm_job_duration_seconds",
    "Scheduler job durations",
    ["job"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300),
)

# Rows still to be handled, by table: (metric name, table, statuses counted).
QUEUES = (
    ("crm_outbox", "outbox_messages", ("queued", "sending")),
    ("crm_webhook_deliveries", "webhook_deliveries", ("pending", "sending")),
)


def count_dispatch(changes: Iterable[Any]) -> None:
    """The settled outcomes of a committed dispatch batch (StatusChange rows)."""
    for (channel, status), n in Tally((c.channel, c.after) for c in changes).items():
        DISPATCH.labels(channel, status).inc(n)


def count_webhook_attempt(outcome: str) -> None:
    WEBHOOK_ATTEMPTS.labels(outcome).inc()


def time_job(job: str, started: float, failed: bool) -> None:
    JOB_RUNS.labels(job, "failed" if failed else "ok").inc()
    JOB_DURATION.labels(job).observe(time.perf_counter() - started)


class QueueCollector(Collector):
    """Depth and oldest age of what waits, read at scrape time (needs an app context)."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = utcnow()
        for name, table, statuses in QUEUES:
            depth = GaugeMetricFamily(f"{name}_depth", f"{table} rows waiting", labels=["status"])
            age = GaugeMetricFamily(
                f"{name}_oldest_age_seconds",
                f"age of the oldest waiting {table} row",
                labels=["status"],
            )
            for status, count, oldest in _waiting(table, statuses):
                depth.add_metric([status], count)
                age.add_metric([status], _age(now, oldest))
            yield depth
            yield age


def _waiting(table: str, statuses: tuple[str, ...]) -> list[tuple[str, int, Any]]:
    found = {status: (0, None) for status in statuses}
    try:
        rows = db.session.execute(
            text(
                f"SELECT status, count(*), min(created_at) FROM {table} "  # noqa: S608 - constants
                "WHERE status IN :statuses GROUP BY status"
            ).bindparams(bindparam("statuses", list(statuses), expanding=True)),
        )
        found.update({status: (count, oldest) for status, count, oldest in rows})
    except SQLAlchemyError:  # a table not migrated yet: report nothing rather than fail
        db.session.rollback()
        return []
    return [(status, count, oldest) for status, (count, oldest) in found.items()]


def _age(now: datetime, oldest: Any) -> float:
    if oldest is None:
        return 0.0
    if isinstance(oldest, str):  # SQLite hands a raw aggregate back as text
        oldest = datetime.fromisoformat(oldest)
    if oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=now.tzinfo)
    return max((now - oldest).total_seconds(), 0.0)


# --- requests and the endpoint -------------------------------------------------------


def _start() -> None:
    request.environ["crm.metrics_started"] = time.perf_counter()


def _observe(response: Response) -> Response:
    started = request.environ.get("crm.metrics_started")
    if started is not None and request.endpoint != "metrics.scrape":
        route = request.url_rule.rule if request.url_rule is not None else "unmatched"
        REQUESTS.labels(request.method, route, str(response.status_code)).inc()
        LATENCY.labels(request.method, route).observe(time.perf_counter() - started)
    return response


def register(app: Flask) -> None:
    app.before_request(_start)
    app.after_request(_observe)
    app.register_blueprint(metrics)


def _scrape_registry() -> CollectorRegistry:
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


@metrics.get("/metrics")
def scrape() -> Response:
    token = current_app.config["CRM"]["METRICS_TOKEN"]
    if token:
        sent = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(sent.encode(), token.encode()):
            return problem(401, "unauthorized", "Unauthorized", "Send the metrics token.")
    queues = CollectorRegistry()
    queues.register(QueueCollector())
    body = generate_latest(_scrape_registry()) + generate_latest(queues)
    return Response(body, content_type=CONTENT_TYPE_LATEST)

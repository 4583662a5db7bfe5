"""One webhook POST, and the rules that decide what happens after it.

`Poster.deliver` runs in a dispatcher's worker thread and touches no database: it checks
the URL again (DNS can change after registration), connects to the address it checked
(pinned: the TLS name and the Host header stay the URL's host, so a second DNS answer
cannot swap the address), signs with every secret in force at the moment of sending,
and returns an `Outcome`. It never follows a redirect. The rest of this module is pure:
the body, the backoff and what an answer means.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import or_, select
from urllib3 import HTTPConnectionPool, HTTPSConnectionPool, Timeout
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.exceptions import HTTPError as TransportError

from crm.extensions import db
from crm.webhooks.models import WebhookSecret
from crm.webhooks.signing import signed_headers
from crm.webhooks.ssrf import Target, UnsafeWebhookUrl, resolve_target

USER_AGENT = "ReferralCRM-Webhooks/1"
BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_CAP = timedelta(hours=6)
MIN_WAIT = timedelta(seconds=1)
# What a receiver may send back that we read; the rest is discarded unread.
MAX_RESPONSE_BYTES = 64 * 1024
RETRY_AFTER_STATUSES = {429, 503}


def body_of(payload: dict[str, Any]) -> bytes:
    """The event's JSON, serialised once, the same bytes on every attempt and redelivery."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def secrets_in_force(endpoint_ids: Iterable[int], now: datetime) -> dict[int, list[str]]:
    """Every secret that signs now, per endpoint, newest first (two during a rotation's
    overlap)."""
    ids = sorted(set(endpoint_ids))
    found: dict[int, list[str]] = defaultdict(list)
    if not ids:
        return found
    rows = db.session.execute(
        select(WebhookSecret.endpoint_id, WebhookSecret.secret)
        .where(
            WebhookSecret.endpoint_id.in_(ids),
            or_(WebhookSecret.expires_at.is_(None), WebhookSecret.expires_at > now),
        )
        .order_by(WebhookSecret.endpoint_id, WebhookSecret.id.desc())
    )
    for endpoint_id, secret in rows:
        found[endpoint_id].append(secret)
    return found


def backoff(attempts: int, rng: random.Random | None = None) -> timedelta:
    """Exponential with full jitter: a random wait up to 30 s * 2**(attempts-1), capped
    at 6 hours, and never under a second."""
    ceiling = min(BACKOFF_BASE * (2 ** max(attempts - 1, 0)), BACKOFF_CAP)
    return max(ceiling * (rng or random).uniform(0.0, 1.0), MIN_WAIT)


def retry_after(value: str | None, now: datetime) -> timedelta | None:
    """`Retry-After` as seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return timedelta(seconds=int(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(when - now, timedelta(0))


@dataclass(frozen=True)
class WebhookSettings:
    batch_size: int = 50
    concurrency: int = 8
    timeout_seconds: int = 10
    retry_for: timedelta = timedelta(hours=72)
    disable_after: int = 20
    allow_localhost: bool = False

    @classmethod
    def from_config(cls, settings: dict) -> WebhookSettings:
        return cls(
            batch_size=settings["WEBHOOK_BATCH_SIZE"],
            concurrency=settings["WEBHOOK_CONCURRENCY"],
            timeout_seconds=settings["WEBHOOK_TIMEOUT_SECONDS"],
            retry_for=timedelta(hours=settings["WEBHOOK_RETRY_HOURS"]),
            disable_after=settings["WEBHOOK_DISABLE_AFTER_FAILURES"],
            allow_localhost=settings["WEBHOOKS_ALLOW_LOCALHOST"],
        )

    @property
    def backlog_per_endpoint(self) -> int:
        """Claimed rows one endpoint may have waiting or in flight in a pump."""
        return 2 * self.concurrency

    @property
    def stale_after(self) -> timedelta:
        """A claim older than this was abandoned. A claimed row waits at most its
        endpoint's backlog (two pools' worth) through at least one slot, a timeout each:
        reclaiming after twice that, or five minutes, never takes a row still in hand."""
        most = 2 * (self.backlog_per_endpoint + 1) * self.timeout_seconds
        return max(timedelta(minutes=5), timedelta(seconds=most))


@dataclass(frozen=True)
class Job:
    """What a worker thread needs to POST one delivery; no ORM object crosses over."""

    delivery_id: int
    endpoint_id: int
    token: datetime  # the claim's claimed_at: the outcome is recorded only on that claim
    attempts: int
    created_at: datetime
    url: str
    message_id: str
    body: bytes
    secrets: tuple[str, ...]


@dataclass(frozen=True)
class Outcome:
    job: Job
    duration_ms: int
    status_code: int | None = None
    error: str | None = None
    retry_after: str | None = None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def throttled(self) -> bool:
        """A 429 or 503 that said when to come back (`Retry-After`)."""
        return self.retry_after is not None

    @property
    def gone(self) -> bool:
        return self.status_code == 410


def describe(status: int, location: str | None) -> str | None:
    """The words for a non-2xx answer, as the delivery log shows them."""
    if 300 <= status < 400:
        where = f" to {location[:300]}" if location else ""
        return f"redirect{where} not followed (HTTP {status}); point the endpoint at the final URL"
    if status == 410:
        return "the receiver answered 410 Gone"
    if status >= 300 or status < 200:
        return f"the receiver answered HTTP {status}"
    return None


class Poster:
    """Signed POSTs over pooled connections to checked addresses; thread-safe."""

    def __init__(self, *, timeout: float, allow_localhost: bool, pool_size: int = 8) -> None:
        self.timeout = Timeout(connect=timeout, read=timeout)
        self.allow_localhost = allow_localhost
        self.pool_size = pool_size
        self._pools: dict[tuple[str, str, str, int], HTTPConnectionPool] = {}
        self._lock = threading.Lock()

    def deliver(self, job: Job) -> Outcome:
        started = time.monotonic()
        try:
            target = resolve_target(job.url, allow_localhost=self.allow_localhost)
        except UnsafeWebhookUrl as exc:
            return Outcome(job, 0, error=f"refused at delivery: {exc}"[:500])
        if not job.secrets:
            return Outcome(job, 0, error="no signing secret in force")
        headers = {
            **signed_headers(job.secrets, job.message_id, datetime.now(UTC), job.body),
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "Host": _host_header(target),
        }
        try:
            status, location, wait = self._post(target, _path(job.url), job.body, headers)
        except (TransportError, OSError) as exc:
            return Outcome(job, _ms(started), error=_transport_error(exc))
        return Outcome(
            job,
            _ms(started),
            status_code=status,
            error=describe(status, location),
            retry_after=wait if status in RETRY_AFTER_STATUSES else None,
        )

    def _post(self, target: Target, path: str, body: bytes, headers: dict[str, str]):
        last: Exception | None = None
        for address in target.addresses:  # the next checked address if one does not answer
            pool = self._pool(target, address)
            try:
                response = pool.urlopen(
                    "POST",
                    path,
                    body=body,
                    headers=headers,
                    redirect=False,
                    retries=False,
                    assert_same_host=False,
                    preload_content=False,
                    timeout=self.timeout,
                )
            except (NewConnectionError, ConnectTimeoutError) as exc:
                last = exc
                continue
            try:
                response.read(MAX_RESPONSE_BYTES)
                if response.read(1):
                    response.close()  # a long answer: drop the connection, not read it all
            finally:
                response.release_conn()
            return (
                response.status,
                response.headers.get("Location"),
                response.headers.get("Retry-After"),
            )
        assert last is not None
        raise last

    def _pool(self, target: Target, address: str) -> HTTPConnectionPool:
        key = (target.scheme, target.host, address, target.port)
        with self._lock:
            pool = self._pools.get(key)
            if pool is None:
                if len(self._pools) > 512:
                    self._pools.clear()  # many endpoints or DNS churn: start over
                common: dict[str, Any] = {
                    "maxsize": self.pool_size,
                    "block": False,
                    "retries": False,
                    "timeout": self.timeout,
                }
                if target.scheme == "https":
                    pool = HTTPSConnectionPool(
                        address,
                        target.port,
                        server_hostname=target.host,
                        assert_hostname=target.host,
                        cert_reqs="CERT_REQUIRED",
                        **common,
                    )
                else:
                    pool = HTTPConnectionPool(address, target.port, **common)
                self._pools[key] = pool
            return pool


def _path(url: str) -> str:
    parts = urlsplit(url.strip())
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def _host_header(target: Target) -> str:
    default = 443 if target.scheme == "https" else 80
    host = f"[{target.host}]" if ":" in target.host else target.host
    return host if target.port == default else f"{host}:{target.port}"


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _transport_error(exc: Exception) -> str:
    reason = getattr(exc, "reason", None) or exc
    kind = "timed out" if "timed out" in str(reason).lower() else "could not be reached"
    return f"the receiver {kind}: {type(reason).__name__}: {reason}"[:500]

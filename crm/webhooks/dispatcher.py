"""Delivering webhooks: claim, commit, POST concurrently, record; at least once, in order.

The same protocol as the message dispatcher (crm/messaging/delivery/dispatcher.py): due
deliveries are claimed (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so any number of
dispatchers run at once; on SQLite the guarded UPDATE alone keeps claims exclusive),
marked `sending` with `claimed_at` and committed *before* any network call. The POSTs run
in a thread pool (`WEBHOOK_CONCURRENCY`), each thread doing HTTP only; the outcomes are
recorded together, one commit per batch of answers.

Ordering: a delivery is not due while an earlier one (smaller id) to the same endpoint
with the same `ordering_key` (the referral) is pending or sending, so a receiver sees a
referral's events in order even while the first keeps failing.

A slow receiver never holds up the others: in `pump` the worker threads take their next
job themselves from a local queue, from the endpoint with the fewest POSTs in flight, while
the pump's thread claims more as the queue runs low and records the answers as they come.

A process killed between the claim and the record leaves rows `sending`;
`reconcile_stale` puts them back to `pending` (their POST may have arrived: the receiver
then sees that `webhook-id` twice, which is what the header is for).
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Collection, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import aliased

from crm.agencies.events import WebhookEndpointDisabled
from crm.core import metrics
from crm.core.db import utcnow
from crm.core.events import publish
from crm.extensions import db
from crm.webhooks.delivery import (
    BACKOFF_CAP,
    MIN_WAIT,
    Job,
    Outcome,
    Poster,
    WebhookSettings,
    backoff,
    body_of,
    retry_after,
    secrets_in_force,
)
from crm.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent
from crm.webhooks.workqueue import WorkQueue

log = logging.getLogger(__name__)

Delivery = WebhookDelivery
OPEN = ("pending", "sending")
INTERRUPTED = (
    "the dispatcher stopped before recording the answer; sending again "
    "(the receiver may see this webhook-id twice)"
)


def _is_postgres() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


class WebhookDispatcher:
    def __init__(
        self,
        settings: WebhookSettings,
        name: str = "",
        rng: random.Random | None = None,
        poster: Poster | None = None,
    ) -> None:
        self.settings = settings
        self.name = name or "webhooks"
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not a secret
        self.poster = poster or Poster(
            timeout=settings.timeout_seconds,
            allow_localhost=settings.allow_localhost,
            pool_size=settings.concurrency,
        )
        self.pool = ThreadPoolExecutor(settings.concurrency, thread_name_prefix=self.name)

    def close(self) -> None:
        self.pool.shutdown(wait=True)

    # The two ways to run: one batch, start to end (tests, `--once`); or the pump.

    def run_once(self, now: datetime | None = None) -> int:
        """Claim one batch, POST it concurrently, record every answer; how many."""
        now = now or utcnow()
        jobs = self.claim(now, self.settings.batch_size)
        outcomes = [future.result() for future in [self.pool.submit(self._post, j) for j in jobs]]
        self.record(outcomes, now)
        return len(jobs)

    def pump(self) -> int:
        """Deliver until nothing is due; how many deliveries were handled. Workers take
        jobs from a local queue (`WorkQueue`: fewest in flight per endpoint first) while
        this thread claims more when the queue runs low and records the answers as they
        come, one commit per round of answers."""
        work = WorkQueue(most_per_endpoint=max(1, self.settings.concurrency - 1))
        workers = [self.pool.submit(self._work, work) for _ in range(self.settings.concurrency)]
        handled, exhausted = 0, False
        try:
            while True:
                # a claim costs a few queries and a commit: a full batch, when the workers
                # are about to run out, rather than a few rows at every turn
                if not exhausted and work.ready() < self.settings.concurrency:
                    jobs = self.claim(utcnow(), self.settings.batch_size, work.load())
                    work.add(jobs)
                    exhausted = not jobs
                outcomes = work.collect(0.5, enough=self.settings.concurrency, linger=0.05)
                if outcomes:
                    self.record(outcomes, utcnow())
                    handled += len(outcomes)
                    exhausted = False  # a delivery done may have made its referral's next due
                elif exhausted and work.idle():
                    return handled
        finally:
            work.close()
            for worker in workers:
                worker.result()

    def _work(self, work: WorkQueue) -> None:
        while (job := work.take()) is not None:
            work.finish(self._post(job))

    def _post(self, job: Job) -> Outcome:
        try:
            return self.poster.deliver(job)
        except Exception as exc:  # a bug must fail one attempt, not the whole batch
            log.exception("webhook post failed", extra={"delivery_id": job.delivery_id})
            return Outcome(job, 0, error=f"internal error: {type(exc).__name__}")

    # Claiming.

    def claim(self, now: datetime, limit: int, busy: Counter | None = None) -> list[Job]:
        """Due deliveries, marked `sending` and committed. `busy` (in `pump`: what is
        claimed per endpoint) bounds each endpoint's backlog; None: no bound."""
        ids = self._pick(self._candidates(now, limit, busy), limit, busy)
        if not ids:
            db.session.commit()
            return []
        claimed_at = utcnow()  # the claim's token: a real instant, whatever `now` says
        claimed = db.session.scalars(
            update(Delivery)
            .where(Delivery.id.in_(ids), Delivery.status == "pending")
            .values(status="sending", claimed_at=claimed_at, attempts=Delivery.attempts + 1)
            .returning(Delivery.id)
            .execution_options(synchronize_session=False)
        ).all()
        jobs = self._jobs(list(claimed), now)
        db.session.commit()
        return jobs

    def _candidates(self, now: datetime, limit: int, busy: Counter | None) -> list:
        """Due rows in order, enough of them to fill `limit`: when one endpoint's rows fill
        the window past its backlog bound, look again without it (a few rounds at most)."""
        cap = self.settings.backlog_per_endpoint
        load = Counter(busy or {})
        found: list = []
        for _ in range(4):
            full = {e for e, n in load.items() if n >= cap} if busy is not None else set()
            due = _due(now, full).limit(limit * 2)
            if _is_postgres():  # rows another dispatcher is claiming are skipped, not awaited
                due = due.with_for_update(of=Delivery, skip_locked=True)
            rows = [tuple(row) for row in db.session.execute(due)]
            found += rows
            load.update(endpoint_id for _, endpoint_id in rows)
            held = busy or {}
            claimable = sum(max(0, min(n, cap) - held.get(e, 0)) for e, n in load.items())
            if busy is None or len(rows) < limit * 2 or claimable >= limit:
                break
        return list(dict.fromkeys(found))

    def _pick(self, candidates: Iterable, limit: int, busy: Counter | None) -> list[int]:
        """At most `limit`, round robin over endpoints; with `busy` (the pump's claimed rows
        per endpoint) no endpoint's backlog grows past `backlog_per_endpoint`."""
        taken: Counter = Counter()
        ranked = []
        for delivery_id, endpoint_id in candidates:
            taken[endpoint_id] += 1
            backlog = taken[endpoint_id] + (busy or {}).get(endpoint_id, 0)
            if busy is None or backlog <= self.settings.backlog_per_endpoint:
                ranked.append((taken[endpoint_id], delivery_id))
        return [delivery_id for _, delivery_id in sorted(ranked)[:limit]]

    def _jobs(self, ids: list[int], now: datetime) -> list[Job]:
        if not ids:
            return []
        rows = db.session.execute(
            select(
                Delivery.id,
                Delivery.endpoint_id,
                Delivery.claimed_at,
                Delivery.attempts,
                Delivery.created_at,
                WebhookEndpoint.url,
                WebhookEvent.public_id,
                WebhookEvent.payload,
            )
            .join(WebhookEndpoint, WebhookEndpoint.id == Delivery.endpoint_id)
            .join(WebhookEvent, WebhookEvent.id == Delivery.event_id)
            .where(Delivery.id.in_(ids))
        ).all()
        secrets = secrets_in_force((row.endpoint_id for row in rows), now)
        order = {delivery_id: rank for rank, delivery_id in enumerate(ids)}
        return sorted(
            (
                Job(
                    delivery_id=row.id,
                    endpoint_id=row.endpoint_id,
                    token=row.claimed_at,
                    attempts=row.attempts,
                    created_at=row.created_at,
                    url=row.url,
                    message_id=row.public_id,
                    body=body_of(row.payload),
                    secrets=tuple(secrets.get(row.endpoint_id, ())),
                )
                for row in rows
            ),
            key=lambda job: order.get(job.delivery_id, 0),
        )

    # Recording.

    def record(self, outcomes: list[Outcome], now: datetime) -> None:
        """Every answer of a batch in one commit: the attempts, each delivery's new state,
        the endpoints' failure counts (and a disabling, with its email)."""
        if not outcomes:
            return
        endpoints = self._lock_endpoints({o.job.endpoint_id for o in outcomes})
        db.session.execute(
            insert(WebhookAttempt),
            [
                {
                    "delivery_id": o.job.delivery_id,
                    "attempted_at": now,
                    "duration_ms": o.duration_ms,
                    "status_code": o.status_code,
                    "error": o.error,
                }
                for o in outcomes
            ],
        )
        db.session.execute(_settle_statement(), [self._settled(o, now) for o in outcomes])
        disabled = self._count_failures(outcomes, endpoints, now)
        db.session.flush()
        for endpoint in disabled:
            publish(
                WebhookEndpointDisabled(
                    endpoint.id,
                    endpoint.agency_id,
                    endpoint.url,
                    endpoint.disabled_reason or "",
                    endpoint.disabled_at or now,
                )
            )
        db.session.commit()
        for outcome in outcomes:
            metrics.count_webhook_attempt(_outcome_label(outcome))

    def _lock_endpoints(self, ids: Collection[int]) -> dict[int, WebhookEndpoint]:
        query = select(WebhookEndpoint).where(WebhookEndpoint.id.in_(ids))
        if _is_postgres():  # in id order: two dispatchers never wait on each other in a circle
            query = query.order_by(WebhookEndpoint.id).with_for_update()
        return {endpoint.id: endpoint for endpoint in db.session.scalars(query)}

    def _settled(self, outcome: Outcome, now: datetime) -> dict:
        job = outcome.job
        values = {
            "b_id": job.delivery_id,
            "b_token": job.token,
            "b_code": outcome.status_code,
            "b_error": outcome.error,
            "b_next": now,
            "b_delivered": None,
        }
        if outcome.delivered:
            return {**values, "b_status": "delivered", "b_delivered": now}
        deadline = job.created_at + self.settings.retry_for
        if now >= deadline:
            failed_error = f"{outcome.error or 'failed'}; retried for {self._hours()} h, given up"
            return {**values, "b_status": "failed", "b_error": failed_error[:500]}
        wait_for = retry_after(outcome.retry_after, now)
        if wait_for is not None:
            wait_for = min(max(wait_for, MIN_WAIT), BACKOFF_CAP)
        else:
            wait_for = backoff(job.attempts, self.rng)
        return {**values, "b_status": "pending", "b_next": min(now + wait_for, deadline)}

    def _hours(self) -> int:
        return int(self.settings.retry_for.total_seconds() // 3600)

    def _count_failures(
        self, outcomes: list[Outcome], endpoints: dict[int, WebhookEndpoint], now: datetime
    ) -> list[WebhookEndpoint]:
        """Failed attempts in a row per endpoint; the endpoints this batch disabled."""
        disabled = []
        for outcome in outcomes:
            endpoint = endpoints.get(outcome.job.endpoint_id)
            if endpoint is None:
                continue
            if outcome.delivered:
                endpoint.consecutive_failures = 0
                continue
            if outcome.throttled:
                continue  # alive and asking for a pause: neither a failure nor a success
            endpoint.consecutive_failures = (endpoint.consecutive_failures or 0) + 1
            if endpoint.disabled_at is not None:
                continue
            reason = self._disabling_reason(outcome, endpoint.consecutive_failures, now)
            if reason:
                endpoint.disabled_at, endpoint.disabled_reason = now, reason[:300]
                disabled.append(endpoint)
                log.warning("webhook endpoint disabled", extra={"endpoint_id": endpoint.id})
        return disabled

    def _disabling_reason(self, outcome: Outcome, failures: int, now: datetime) -> str | None:
        when = now.strftime("%Y-%m-%d %H:%M UTC")
        if outcome.gone:
            return f"The receiver answered 410 Gone on {when}: it asked for no more webhooks."
        if failures >= self.settings.disable_after:
            last = outcome.error or "failed"
            return f"{failures} deliveries failed in a row (the last on {when}: {last})."
        return None

    # Crash recovery.

    def reconcile_stale(self, now: datetime | None = None) -> int:
        """Rows a dead dispatcher left `sending` go back to `pending`, due now."""
        now = now or utcnow()
        stale = (
            select(Delivery.id)
            .where(
                Delivery.status == "sending",
                Delivery.claimed_at < now - self.settings.stale_after,
            )
            .order_by(Delivery.claimed_at)
            .limit(500)
        )
        if _is_postgres():
            stale = stale.with_for_update(skip_locked=True)
        ids = list(db.session.scalars(stale))
        if ids:
            db.session.execute(
                update(Delivery)
                .where(Delivery.id.in_(ids), Delivery.status == "sending")
                .values(
                    status="pending", claimed_at=None, next_attempt_at=now, last_error=INTERRUPTED
                )
                .execution_options(synchronize_session=False)
            )
            log.warning("webhook deliveries reclaimed", extra={"count": len(ids)})
        db.session.commit()
        return len(ids)


def _due(now: datetime, exclude: Collection[int] = ()):
    """Pending, due, to an enabled endpoint, and first in its endpoint's referral queue."""
    earlier = aliased(Delivery)
    # OFFSET 0 keeps PostgreSQL from turning this into an anti-join over every open row:
    # probed per candidate through ix_webhook_deliveries_order, the scan of due rows in
    # order stops as soon as the batch is full. The order is ix_webhook_deliveries_due's
    # own (no id after the time, which would sort every due row first); the order within a
    # referral is the NOT EXISTS's.
    waiting = (
        select(earlier.id)
        .where(
            earlier.endpoint_id == Delivery.endpoint_id,
            earlier.ordering_key == Delivery.ordering_key,
            earlier.id < Delivery.id,
            earlier.status.in_(OPEN),
        )
        .offset(0)
        .exists()
    )
    query = (
        select(Delivery.id, Delivery.endpoint_id)
        .join(WebhookEndpoint, WebhookEndpoint.id == Delivery.endpoint_id)
        .where(
            Delivery.status == "pending",
            Delivery.next_attempt_at <= now,
            WebhookEndpoint.disabled_at.is_(None),
            ~waiting,
        )
        .order_by(Delivery.next_attempt_at)
    )
    if exclude:
        query = query.where(Delivery.endpoint_id.not_in(sorted(exclude)))
    return query


def _settle_statement():
    """One guarded UPDATE, executed once per answer: only the claim that sent it records it
    (a row reconciled and claimed again meanwhile belongs to the newer claim)."""
    table = Delivery.__table__
    return (
        update(table)
        .where(
            table.c.id == bindparam("b_id"),
            table.c.status == "sending",
            table.c.claimed_at == bindparam("b_token"),
        )
        .values(
            status=bindparam("b_status"),
            claimed_at=None,
            next_attempt_at=bindparam("b_next"),
            last_status_code=bindparam("b_code"),
            last_error=bindparam("b_error"),
            delivered_at=bindparam("b_delivered"),
        )
    )


def _outcome_label(outcome: Outcome) -> str:
    """delivered, throttled, http_<code> or error: few enough to be a metric's label."""
    if outcome.delivered:
        return "delivered"
    if outcome.throttled:
        return "throttled"
    return f"http_{outcome.status_code}" if outcome.status_code is not None else "error"

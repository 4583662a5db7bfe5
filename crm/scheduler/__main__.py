"""`python -m crm.scheduler`: the nudge sweep and the dispatcher, in their own process.

Several copies may run at once (PostgreSQL): the sweep and the dispatcher claim rows with
FOR UPDATE SKIP LOCKED and every message has a unique idempotency key.

Job settings, and why:
- coalesce=True: after a pause (laptop asleep, a long GC) run a missed job once, not once
  per missed tick; each run already drains everything that is due.
- max_instances=1: a job never overlaps itself in this process (a slow dispatch round
  simply delays the next tick).
- misfire_grace_time: a tick late by less than this still runs; later ones are skipped and
  the next tick catches up, which loses nothing because the work is in the database.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.blocking import BlockingScheduler

from crm import create_app
from crm.scheduler.jobs import Jobs

log = logging.getLogger("crm.scheduler")


def build_scheduler(
    jobs: Jobs, dispatch_seconds: float, sweep_seconds: float, reconcile_seconds: float = 60.0
) -> BlockingScheduler:
    scheduler = BlockingScheduler(
        executors={"default": ThreadPoolExecutor(max_workers=4)},
        job_defaults={"coalesce": True, "max_instances": 1},
        timezone="UTC",
    )
    scheduler.add_job(
        jobs.dispatch, "interval", seconds=dispatch_seconds, id="dispatch", misfire_grace_time=10
    )
    scheduler.add_job(
        jobs.sweep_nudges, "interval", seconds=sweep_seconds, id="sweep", misfire_grace_time=30
    )
    scheduler.add_job(
        jobs.reconcile, "interval", seconds=reconcile_seconds, id="reconcile", misfire_grace_time=30
    )
    scheduler.add_job(
        jobs.purge_idempotency_keys, "interval", hours=1, id="purge", misfire_grace_time=600
    )
    scheduler.add_job(
        jobs.commission_payable, "interval", hours=1, id="commission", misfire_grace_time=600
    )
    scheduler.add_job(
        jobs.sweep_documents, "interval", hours=1, id="documents", misfire_grace_time=600
    )
    scheduler.add_job(jobs.sweep_uploads, "interval", hours=1, id="uploads", misfire_grace_time=600)
    scheduler.add_job(
        jobs.deliver_webhooks, "interval", seconds=2, id="webhooks", misfire_grace_time=10
    )
    scheduler.add_job(
        jobs.reconcile_webhooks,
        "interval",
        seconds=60,
        id="webhooks-reconcile",
        misfire_grace_time=30,
    )
    scheduler.add_job(jobs.retention, "interval", hours=6, id="retention", misfire_grace_time=3600)
    return scheduler


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m crm.scheduler", description=__doc__)
    parser.add_argument(
        "--reconcile-seconds",
        type=float,
        default=60.0,
        help="how often rows left `sending` by a dead dispatcher are settled",
    )
    parser.add_argument("--dispatch-seconds", type=float, default=5.0)
    parser.add_argument("--sweep-seconds", type=float, default=60.0)
    parser.add_argument(
        "--once",
        action="store_true",
        help="reconcile, sweep, dispatch and deliver webhooks once, then exit",
    )
    args = parser.parse_args(argv)
    app = create_app()
    jobs = Jobs(app, name=f"{socket.gethostname()}-{os.getpid()}")
    if args.once:
        settled, swept, sent = jobs.reconcile(), jobs.sweep_nudges(), jobs.dispatch()
        log.info("once: %s settled, %s nudges fired, %s sent", settled, swept, sent)
        reclaimed, delivered = jobs.reconcile_webhooks(), jobs.deliver_webhooks()
        log.info("once: %s webhooks reclaimed, %s delivered", reclaimed, delivered)
        if jobs.failures:  # a line like the others, then the exit status says it
            log.error("once: %s job(s) failed; see the lines above", jobs.failures)
            raise SystemExit(1)
        return
    scheduler = build_scheduler(
        jobs, args.dispatch_seconds, args.sweep_seconds, args.reconcile_seconds
    )
    signal.signal(signal.SIGTERM, lambda *_: scheduler.shutdown(wait=False))
    log.info("scheduler started")
    scheduler.start()


if __name__ == "__main__":
    main()

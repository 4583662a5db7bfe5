"""Webhook benchmark: the webhook dispatcher against a plain loop of signed POSTs.

    .venv/bin/python bench/webhooks.py            # about a minute on 2 cores

Everything runs on 127.0.0.1, in a scratch PostgreSQL database created on the server of
CRM_BENCH_DATABASE_URL (default postgresql+psycopg://postgres@127.0.0.1:5432/crm_bench;
named that database's name + "_wh_" + a random suffix) and dropped on the way out.

10,000 events (2,500 for each of 4 endpoints, 4 events per referral, so order per
referral applies) go to 4 receivers, each the test receiver (tests/fakes/webhook_receiver.py)
in a process of its own, verifying every signature with `standardwebhooks`:
two answer at once, one is slow (sleeps --slow-delay per request), one is failing: it
answers 503 with `Retry-After: 1` to the first request of every webhook-id and 200 to the
next (so every event to it is retried exactly once, as it asked).

- Dispatcher: --dispatchers processes (default 2), each a `WebhookDispatcher.pump()` with
  WEBHOOK_CONCURRENCY=--concurrency (default 8), until no delivery is open.
- Baseline, in the same run, against fresh receivers of the same kinds: a plain loop of
  signed POSTs (the same bodies, `crm.webhooks.signing.signed_headers`, a
  `requests.Session`), in the same number of processes and threads, each thread looping
  over its share; a refused POST is sent again at once (what the failing receiver asks
  for, without waiting the second it asks). No database, no claiming, no records.

Rates are taken at the receivers, from the first request to the last (interpreter start-up
excluded on both sides). Counted from the receivers' records: lost (an event no receiver
accepted), duplicates (requests beyond one per event, and beyond two for the failing
receiver), unverified signatures; and from the database, deliveries not `delivered`.
Goal: dispatcher / loop >= 0.7, 0 lost, 0 duplicates. Every process it starts is stopped
and the scratch database dropped on the way out, errors included.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from contextlib import suppress
from pathlib import Path

import psycopg
from _common import DEFAULT_URL, ROOT, Databases, Processes, clean_env

SELF = str(Path(__file__).resolve())
GOAL = 0.7
KINDS = ("ok", "ok", "slow", "flaky")


class Bench:
    def __init__(self, url: str) -> None:
        self.databases = Databases(url, tag="wh")
        self.name = self.databases.prefix  # the one scratch database
        self.processes = Processes()

    # the scratch database

    def libpq(self, name: str | None = None) -> str:
        return self.databases.libpq_url(name or self.name)

    def sqlalchemy_url(self) -> str:
        return self.databases.sqlalchemy_url(self.name)

    def create(self) -> None:
        self.databases.create(self.name)
        subprocess.run(
            [sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"],
            cwd=ROOT,
            env=clean_env(DATABASE_URL=self.sqlalchemy_url(), LOG_LEVEL="WARNING"),
            check=True,
            capture_output=True,
            timeout=300,
        )

    def drop(self) -> None:
        self.databases.drop_all()

    # processes

    def receivers(self, secret: str, slow_delay: float) -> list[tuple[subprocess.Popen, str]]:
        started = []
        for kind in KINDS:
            mode = kind
            process = self.processes.start(
                [
                    sys.executable,
                    "-m",
                    "tests.fakes.webhook_receiver",
                    "--secret",
                    secret,
                    "--mode",
                    mode,
                    "--delay",
                    str(slow_delay),
                    "--retry-after",
                    "1",
                ],
                stdout=subprocess.PIPE,
                text=True,
                env=clean_env(),
            )
            assert process.stdout is not None
            started.append((process, process.stdout.readline().strip()))
        return started

    # seeding

    def seed(self, urls: list[str], secret: str, events: int) -> list[tuple[str, int, bytes]]:
        """The events and their deliveries, pending and due; returns (id, receiver, body)."""
        per = events // len(urls)
        referrals = max(1, per // 4)
        with psycopg.connect(self.libpq()) as conn:
            agency = conn.execute(
                "INSERT INTO agencies (name, country, contact_email, commission_basis_points,"
                " active, created_at, updated_at) VALUES ('Bench', 'DE', 'a@bench.example', 0,"
                " true, now(), now()) RETURNING id"
            ).fetchone()[0]
            for index, url in enumerate(urls):
                endpoint = conn.execute(
                    "INSERT INTO webhook_endpoints (agency_id, url, description, event_types,"
                    " consecutive_failures, created_at, updated_at) VALUES (%s, %s, '',"
                    " '[\"referral.stage_changed\"]', 0, now(), now()) RETURNING id",
                    (agency, url),
                ).fetchone()[0]
                conn.execute(
                    "INSERT INTO webhook_secrets (endpoint_id, secret, created_at)"
                    " VALUES (%s, %s, now())",
                    (endpoint, secret),
                )
                conn.execute(
                    """
                    WITH e AS (
                        INSERT INTO webhook_events (public_id, agency_id, type, payload,
                                                    occurred_at)
                        SELECT 'msg_bench_' || %(i)s || '_' || g, %(agency)s,
                               'referral.stage_changed',
                               json_build_object('type', 'referral.stage_changed',
                                   'version', 1, 'timestamp', '2026-12-01T09:00:00+00:00',
                                   'data', json_build_object('referral', 'R-' || (g %% %(r)s),
                                       'stage', 'mri_review', 'seq', g)),
                               now()
                        FROM generate_series(1, %(per)s) AS g
                        RETURNING id, public_id
                    )
                    INSERT INTO webhook_deliveries (event_id, endpoint_id, ordering_key,
                        status, attempts, next_attempt_at, created_at)
                    SELECT id, %(endpoint)s,
                           'referral:' || (split_part(public_id, '_', 4)::int %% %(r)s),
                           'pending', 0, now(), now()
                    FROM e ORDER BY id
                    """,
                    {
                        "i": index,
                        "agency": agency,
                        "r": referrals,
                        "per": per,
                        "endpoint": endpoint,
                    },
                )
            rows = conn.execute(
                "SELECT e.public_id, w.url, e.payload::text FROM webhook_events e"
                " JOIN webhook_deliveries d ON d.event_id = e.id"
                " JOIN webhook_endpoints w ON w.id = d.endpoint_id ORDER BY d.id"
            ).fetchall()
            conn.execute("ANALYZE")
        from crm.webhooks.delivery import body_of  # the bytes the dispatcher sends

        return [
            (public_id, urls.index(url), body_of(json.loads(payload)))
            for public_id, url, payload in rows
        ]

    def open_deliveries(self) -> Counter:
        with psycopg.connect(self.libpq()) as conn:
            return Counter(
                dict(conn.execute("SELECT status, count(*) FROM webhook_deliveries GROUP BY 1"))
            )


def received(url: str) -> list[dict]:
    base = url.rsplit("/", 1)[0]
    with urllib.request.urlopen(f"{base}/_received", timeout=60) as answer:
        return json.loads(answer.read())


def tally(urls: list[str], expected: list[tuple[str, int, bytes]]) -> dict:
    """Rates and losses from what the receivers recorded."""
    lost = duplicates = unverified = requests = 0
    first, last = float("inf"), 0.0
    for index, url in enumerate(urls):
        records = [r for r in received(url) if r["path"] == "/hooks"]
        requests += len(records)
        unverified += sum(not r["verified"] for r in records)
        if records:
            first = min(first, min(r["at"] for r in records))
            last = max(last, max(r["at"] for r in records))
        counts = Counter(r["id"] for r in records)
        accepted = {r["id"] for r in records if 200 <= r["answered"] < 300}
        allowed = 2 if KINDS[index] == "flaky" else 1
        ids = [i for i, receiver, _ in expected if receiver == index]
        lost += sum(i not in accepted for i in ids)
        duplicates += sum(max(0, counts[i] - allowed) for i in ids)
    span = max(last - first, 1e-9)
    return {
        "requests": requests,
        "seconds": span,
        "rate": len(expected) / span,
        "lost": lost,
        "duplicates": duplicates,
        "unverified": unverified,
    }


# --------------------------------------------------------------------------- roles


def dispatch_role(args: argparse.Namespace) -> int:
    """--role dispatch: pump until no delivery is pending or sending."""
    sys.path.insert(0, str(ROOT))
    from sqlalchemy import func, select

    from crm import create_app
    from crm.extensions import db
    from crm.webhooks.jobs import deliver_webhooks, dispatcher_for
    from crm.webhooks.models import WebhookDelivery

    app = create_app()
    dispatcher = dispatcher_for(app, f"bench-{os.getpid()}")
    spent: Counter = Counter()
    for name in ("claim", "record"):
        original = getattr(dispatcher, name)

        def timed(*a, _original=original, _name=name, **k):
            started = time.perf_counter()
            try:
                return _original(*a, **k)
            finally:
                spent[_name] += time.perf_counter() - started
                spent[f"{_name}s"] += 1

        setattr(dispatcher, name, timed)
    deadline = time.monotonic() + 900
    with app.app_context():
        while time.monotonic() < deadline:
            deliver_webhooks(dispatcher)
            still_open = db.session.scalar(
                select(func.count()).where(WebhookDelivery.status.in_(("pending", "sending")))
            )
            db.session.commit()
            if not still_open:
                break
            time.sleep(0.1)  # the failing receiver's retries are due a second later
        else:
            return 1  # still open after 15 minutes: report it, do not wait for ever
    dispatcher.close()
    print(
        f"  dispatcher {os.getpid()}: {spent['claims']} claims {spent['claim']:.1f} s, "
        f"{spent['records']} records {spent['record']:.1f} s",
        file=sys.stderr,
    )
    return 0


def loop_role(args: argparse.Namespace) -> int:
    """--role loop: a plain loop of signed POSTs over this process's share, in threads."""
    sys.path.insert(0, str(ROOT))
    from datetime import UTC, datetime

    import requests

    from crm.webhooks.signing import signed_headers

    jobs = json.loads(Path(args.jobs).read_text())[args.index :: args.workers]
    urls: list[str] = json.loads(Path(args.urls).read_text())

    def run(share: list) -> None:
        session = requests.Session()
        for message_id, receiver, body in share:
            data = body.encode()
            for _ in range(2):  # the failing receiver asks for one more try
                headers = {
                    **signed_headers([args.secret], message_id, datetime.now(UTC), data),
                    "Content-Type": "application/json",
                }
                answer = session.post(
                    urls[receiver], data=data, headers=headers, timeout=10, allow_redirects=False
                )
                if answer.ok:
                    break

    threads = [
        threading.Thread(target=run, args=(jobs[n :: args.concurrency],))
        for n in range(args.concurrency)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return 0


# --------------------------------------------------------------------------- the run


def phase(bench: Bench, name: str, args: argparse.Namespace, secret: str, run) -> dict:
    receivers = bench.receivers(secret, args.slow_delay)
    urls = [url for _, url in receivers]
    expected = bench.seed(urls, secret, args.events) if name == "dispatcher" else None
    started = time.monotonic()
    expected = run(urls, expected)
    wall = time.monotonic() - started
    result = {**tally(urls, expected), "wall": wall}
    for process, _ in receivers:
        process.terminate()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--role", default="main", choices=("main", "dispatch", "loop"))
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--dispatchers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--slow-delay", type=float, default=0.02)
    parser.add_argument("--index", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--jobs")
    parser.add_argument("--urls")
    parser.add_argument("--secret")
    args = parser.parse_args()
    if args.role == "dispatch":
        return dispatch_role(args)
    if args.role == "loop":
        return loop_role(args)

    from crm.webhooks.signing import new_secret

    bench = Bench(os.environ.get("CRM_BENCH_DATABASE_URL", DEFAULT_URL))
    secret = new_secret()
    workdir = Path(os.environ.get("TMPDIR", "/tmp")) / bench.name
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"load average before: {os.getloadavg()[0]:.2f}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # clean up on the way out
    try:
        bench.create()

        def dispatch(urls, expected):
            env = clean_env(
                DATABASE_URL=bench.sqlalchemy_url(),
                LOG_LEVEL="WARNING",
                WEBHOOKS_ALLOW_LOCALHOST="1",
                WEBHOOK_CONCURRENCY=str(args.concurrency),
                WEBHOOK_BATCH_SIZE="50",
            )
            processes = [
                bench.processes.start([sys.executable, SELF, "--role", "dispatch"], env=env)
                for _ in range(args.dispatchers)
            ]
            for process in processes:
                if process.wait(timeout=1800) != 0:
                    raise RuntimeError("a dispatcher process failed")
            (workdir / "jobs.json").write_text(
                json.dumps([(i, r, b.decode()) for i, r, b in expected])
            )
            return expected

        def loop(urls, _):
            jobs = json.loads((workdir / "jobs.json").read_text())
            (workdir / "urls.json").write_text(json.dumps(urls))
            processes = [
                bench.processes.start(
                    [
                        sys.executable,
                        SELF,
                        "--role",
                        "loop",
                        "--jobs",
                        str(workdir / "jobs.json"),
                        "--urls",
                        str(workdir / "urls.json"),
                        "--secret",
                        secret,
                        "--index",
                        str(n),
                        "--workers",
                        str(args.dispatchers),
                        "--concurrency",
                        str(args.concurrency),
                    ],
                    env=clean_env(),
                )
                for n in range(args.dispatchers)
            ]
            for process in processes:
                if process.wait(timeout=1800) != 0:
                    raise RuntimeError("a loop process failed")
            return [(i, r, b.encode()) for i, r, b in jobs]

        engine = phase(bench, "dispatcher", args, secret, dispatch)
        statuses = bench.open_deliveries()
        baseline = phase(bench, "loop", args, secret, loop)
    finally:
        bench.processes.stop_all()
        bench.drop()
        for leftover in workdir.glob("*.json"):
            leftover.unlink()
        with suppress(OSError):
            workdir.rmdir()
    ratio = engine["rate"] / baseline["rate"]
    print(
        f"{args.events} events to 4 receivers (2 ok, 1 slow {args.slow_delay * 1000:.0f} ms, "
        f"1 failing once per event with Retry-After: 1); {args.dispatchers} processes x "
        f"{args.concurrency} threads on each side"
    )
    for label, figures in (("dispatcher", engine), ("plain loop", baseline)):
        print(
            f"  {label:<10} {figures['rate']:7.0f} events/s at the receivers "
            f"({figures['seconds']:.1f} s first to last request, {figures['wall']:.1f} s wall), "
            f"{figures['requests']} requests, lost {figures['lost']}, "
            f"duplicates {figures['duplicates']}, unverified {figures['unverified']}"
        )
    print(f"  deliveries by status after the dispatcher: {dict(statuses)}")
    verdict = "met" if ratio >= GOAL else "MISSED"
    print(f"dispatcher / plain loop: {ratio:.2f}x (goal >= {GOAL}x: {verdict})")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Reports benchmark: each report at 100,000 referrals against the same at 1,000.

    .venv/bin/python bench/reports.py            # a few minutes on 2 cores

Two scratch PostgreSQL databases (named after CRM_BENCH_DATABASE_URL's database, default
postgresql+psycopg://postgres@127.0.0.1:5432/crm_bench, plus a random suffix) are
migrated and bulk-loaded the way bench/api.py loads them (INSERT ... SELECT
generate_series: referrals over two years with their stage history), plus an accepted
plan for every referral that reached plan_accepted and three outbox rows per referral.
The rollups are then filled by `flask crm reports rebuild` (what the subscribers would
have written one event at a time). Each report is requested in-process through the app's
test client (the whole request: token check, parsing, query, JSON), unfiltered and with a
90-day date range; the median of the timed runs is compared. Goal: 100k / 1k <= 3.
Every scratch database is dropped on the way out.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import DEFAULT_URL, Databases, run_flask
from api import _app_env, _last_line, bulk_load

GOAL = 3.0
REPORTS = ("funnel", "time-in-stage", "agencies", "messaging", "sla")
RUNS = 30


def load_extras(dbs: Databases, name: str) -> None:
    statements = [
        """
        INSERT INTO treatment_plans (referral_id, version, status, procedure_code, hospital,
            surgeon, currency, deposit_minor, valid_until, inclusions, exclusions,
            notes_for_patient, created_by_label, created_at, accepted_at, acceptance)
        SELECT t.referral_id, 1, 'accepted', 'microdiscectomy', 'H', 'S',
               (ARRAY['EUR','USD','GBP'])[1 + t.referral_id % 3], 0, date '2030-01-01',
               '[]'::json, '[]'::json, '', 'X', t.occurred_at, t.occurred_at, '{}'::json
        FROM stage_transitions t WHERE t.to_stage = 'plan_accepted'
        """,
        """
        INSERT INTO plan_line_items (plan_id, position, kind, description, quantity,
                                     unit_price_minor)
        SELECT id, 0, 'surgery', 'Surgery', 1, 500000 + (id % 7) * 10000 FROM treatment_plans
        """,
        """
        INSERT INTO outbox_messages (idempotency_key, referral_id, agency_id, patient_id,
            audience, channel, kind, language, time_zone, to_address, body_text, segments, status,
            suppressed_reason, attempts, next_attempt_at, created_at, updated_at, stands)
        SELECT 'bench-' || r.id || '-' || k, r.id, r.agency_id, r.patient_id, 'patient',
               CASE WHEN k = 2 THEN 'email' ELSE 'sms' END, 'bench', 'en', 'UTC', 'x', 'x',
               CASE WHEN k = 2 THEN NULL ELSE 1 + r.id % 2 END,
               (ARRAY['delivered','sent','failed','suppressed','delivered'])[1 + (r.id + k) % 5],
               CASE WHEN (r.id + k) % 5 = 3 THEN 'quiet_hours' END, 1,
               r.created_at, r.created_at + k * interval '1 day', r.created_at, false
        FROM referrals r CROSS JOIN generate_series(0, 2) AS k
        """,
    ]
    with psycopg.connect(dbs.libpq_url(name)) as connection:
        with connection.transaction():
            for statement in statements:
                connection.execute(statement)
        connection.autocommit = True
        connection.execute("VACUUM ANALYZE")


def prepare(dbs: Databases, count: int) -> tuple[str, str]:
    name = dbs.create(f"{dbs.prefix}_rep_{count}_{secrets.token_hex(3)}")
    url = dbs.sqlalchemy_url(name)
    env = _app_env(url)
    run_flask(env, "db", "upgrade")
    run_flask(env, "crm", "load-catalogue")
    run_flask(env, "crm", "create-agency", "Bench Agency", "--country", "DE")
    run_flask(env, "crm", "create-staff", "x@y", "--name", "X", "--role", "coordinator")
    run_flask(env, "crm", "create-staff", "m@y", "--name", "M", "--role", "manager")
    token = _last_line(run_flask(env, "crm", "create-token", "m@y"))
    bulk_load(dbs, name, count)
    load_extras(dbs, name)
    started = time.perf_counter()
    print(run_flask(env, "crm", "reports", "rebuild").strip().replace("\n", "; "))
    print(f"  rebuild at {count:,} referrals: {time.perf_counter() - started:.1f} s")
    return url, token


def time_reports(url: str, token: str) -> dict[str, float]:
    os.environ.update({k: v for k, v in _app_env(url).items() if k.startswith("CRM_")})
    from crm import create_app

    app = create_app()
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    since = (date.today() - timedelta(days=90)).isoformat()
    timings: dict[str, float] = {}
    for report in REPORTS:
        for label, query in (("all", ""), ("90 days", f"?from={since}")):
            path = f"/api/v1/reports/{report}{query}"
            for _ in range(3):  # warm up
                assert client.get(path, headers=headers).status_code == 200, path
            runs = []
            for _ in range(RUNS):
                started = time.perf_counter()
                response = client.get(path, headers=headers)
                runs.append(time.perf_counter() - started)
                assert response.status_code == 200
            timings[f"{report} ({label})"] = statistics.median(runs)
    with app.app_context():
        from crm.extensions import db

        db.engine.dispose()
    return timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=1_000, help="referrals, small database")
    parser.add_argument("--large", type=int, default=100_000, help="referrals, large database")
    args = parser.parse_args(argv)
    dbs = Databases(os.environ.get("CRM_BENCH_DATABASE_URL", DEFAULT_URL))
    try:
        print(f"load average: {os.getloadavg()}")
        small = time_reports(*prepare(dbs, args.small))
        large = time_reports(*prepare(dbs, args.large))
    finally:
        dbs.drop_all()
    print(f"{'report':28} {'small ms':>8} {'large ms':>8} {'ratio':>6}  goal <= {GOAL}x")
    for key in small:
        ratio = large[key] / small[key]
        mark = "met" if ratio <= GOAL else "MISSED"
        print(f"{key:28} {small[key] * 1000:8.2f} {large[key] * 1000:8.2f} {ratio:6.2f}  {mark}")
    print(f"load average: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Retention benchmark: the set-wise schedule against the per-person one it replaced.

    .venv/bin/python bench/retention.py                      # 100,000 referrals, ~3 minutes
    .venv/bin/python bench/retention.py --referrals 5000     # a quick run

One scratch PostgreSQL database (named after CRM_BENCH_DATABASE_URL's database, default
postgresql+psycopg://postgres@127.0.0.1:5432/crm_bench, plus a random suffix) is
migrated and loaded with INSERT ... SELECT generate_series, as bench/api.py's `bulk_load`
does: patients with one referral, one in six with a second; 85% of the referrals
completed or lost at some time in the last nine years, the rest open (before or in
treatment); 3% of the patients linked as duplicates to the previous patient (chains of
three among them, one link in five `merged` with the row left as a tombstone), 1%
erased, 0.5% with a hold in force and 0.5% with a lifted one; then VACUUM ANALYZE. Most
patients are candidates (every referral of their own ended), which is what retention
meets after some years.

In the app (in-process, production configuration, the default periods: 3,650 days after
a completion, 730 after a loss), the per-person algorithm as it was before (the tests'
reference, `schedule_one_person_at_a_time` in tests/privacy/retention_rows.py: a read
per link hop and one for the referrals per candidate, one for the holds per person due)
and `crm.privacy.queries.retention_schedule` (three reads) are timed on the same
database, in the same run, with the SQL statements each sends; the two lists must be
equal. The per-person one runs once (over two minutes at 100,000), the set-wise one
`--runs` times (the median counts). Goal: the set-wise one at least 10x faster at
100,000 referrals. The scratch database is dropped on the way out.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psycopg

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
sys.path.insert(0, str(BENCH_DIR.parent))

from _common import DEFAULT_URL, Databases, run_flask  # noqa: E402 - beside this file
from api import _app_env  # noqa: E402 - bench/api.py, beside this file

# the schedule as it was before it read set-wise: the tests' reference, word for word
from tests.privacy.retention_rows import schedule_one_person_at_a_time  # noqa: E402

GOAL = 10.0
OPEN_STAGES = "ARRAY['enquiry','awaiting_mri','plan_offered','follow_up','in_treatment']"


def load(dbs: Databases, name: str, referrals: int) -> dict[str, int]:
    """The rows retention reads; returns what was loaded, counted."""
    patients = max(1, referrals * 6 // 7)  # one in six has a second referral
    statements = [
        "SELECT setseed(0.42)",
        f"""
        INSERT INTO patients (id, agency_id, given_name, family_name, date_of_birth, sex,
                              country, phone, email, language, time_zone,
                              created_at, updated_at)
        SELECT p, (SELECT min(id) FROM agencies), 'Rita', 'Retention' || p,
               date '1950-01-01' + (p * 37) % 18000, 'female', 'DE',
               '+49151' || lpad(p::text, 8, '0'), 'patient' || p || '@bench.example',
               'de', 'Europe/Berlin', now() - interval '10 years', now()
        FROM generate_series(1, {patients}) AS p
        """,
        f"""
        INSERT INTO referrals (id, patient_id, agency_id, procedure_id, stage,
                               stage_entered_at, lost_reason, agency_reference, complaints,
                               symptom_duration_weeks, treatments_tried, pain_score,
                               intake_notes, created_at, updated_at)
        SELECT n, 1 + (n - 1) % {patients}, (SELECT min(id) FROM agencies),
               (SELECT id FROM procedures WHERE code = 'microdiscectomy'),
               stage, ended_at, CASE WHEN stage = 'lost' THEN 'price' END, 'RET-' || n,
               '["severe_persistent_low_back_pain"]'::json, 12, '[]'::json, 6,
               'bulk-loaded for the benchmark', ended_at - interval '60 days', ended_at
        FROM (
            SELECT n, now() - random() * interval '3287 days' AS ended_at,
                   CASE WHEN r < 0.45 THEN 'completed' WHEN r < 0.85 THEN 'lost'
                        ELSE ({OPEN_STAGES})[1 + (n % 5)] END AS stage
            FROM (SELECT n, random() AS r FROM generate_series(1, {referrals}) AS n) AS drawn
        ) AS spec
        """,
        # 3% linked to the previous patient; every 5th of them also to the one before
        # (chains of three), and every 5th link `merged`: that row is a tombstone, its
        # referrals moved to the survivor (crm/merges).
        """
        INSERT INTO duplicate_matches (referral_id, patient_id, matched_patient_id, kind,
                                       status, evidence, created_at)
        SELECT id, id, id - gap, 'exact',
               CASE WHEN id % 165 = 0 THEN 'merged' ELSE 'linked' END, '{}'::json, now()
        FROM patients CROSS JOIN (VALUES (1), (2)) AS gaps(gap)
        WHERE id % 33 = 0 AND id > 2 AND (gap = 1 OR id % 165 = 66)
        """,
        """
        UPDATE patients SET merged_into_id = m.matched_patient_id, merged_at = now()
        FROM duplicate_matches m WHERE m.status = 'merged' AND m.patient_id = patients.id
        """,
        """
        UPDATE referrals SET patient_id = p.merged_into_id
        FROM patients p WHERE p.merged_into_id IS NOT NULL AND referrals.patient_id = p.id
        """,
        """
        INSERT INTO patient_erasures (patient_id, erased_at, source, reason, erased_by_label,
                                      documents_removed)
        SELECT id, now() - interval '1 year', 'request', 'asked', 'M', 0
        FROM patients WHERE id % 100 = 7
        """,
        """
        INSERT INTO legal_holds (patient_id, reason, set_at, set_by_label, lifted_at,
                                 lifted_by_label)
        SELECT id, 'a claim', now() - interval '2 years', 'M',
               CASE WHEN id % 200 = 111 THEN now() END,
               CASE WHEN id % 200 = 111 THEN 'M' END
        FROM patients WHERE id % 200 IN (11, 111)
        """,
        "SELECT setval(pg_get_serial_sequence('patients', 'id'), (SELECT max(id) FROM patients))",
        "SELECT setval(pg_get_serial_sequence('referrals', 'id'), (SELECT max(id) FROM referrals))",
    ]
    with psycopg.connect(dbs.libpq_url(name)) as connection:
        with connection.transaction():
            for statement in statements:
                connection.execute(statement)
        counts = {
            table: connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("patients", "referrals", "duplicate_matches", "patient_erasures")
        }
        connection.commit()
        connection.autocommit = True
        connection.execute("VACUUM ANALYZE")
    return counts


def prepare(dbs: Databases, referrals: int) -> str:
    name = dbs.create(f"{dbs.prefix}_ret_{referrals}_{secrets.token_hex(3)}")
    url = dbs.sqlalchemy_url(name)
    env = _app_env(url)
    run_flask(env, "db", "upgrade")
    run_flask(env, "crm", "load-catalogue")
    run_flask(env, "crm", "create-agency", "Bench Agency", "--country", "DE")
    started = time.perf_counter()
    counts = load(dbs, name, referrals)
    print(
        f"loaded in {time.perf_counter() - started:.1f} s: "
        + ", ".join(f"{count:,} {table}" for table, count in counts.items())
    )
    return url


# --------------------------------------------------------------------------- timing


def timed(engine, run: Callable[[], list]) -> tuple[list, float, int]:
    """`run`'s answer, its seconds and the SQL statements it sent; a fresh session."""
    from sqlalchemy import event

    from crm.extensions import db

    statements = 0

    def count(*_args) -> None:
        nonlocal statements
        statements += 1

    db.session.remove()
    event.listen(engine, "before_cursor_execute", count)
    try:
        started = time.perf_counter()
        answer = run()
        seconds = time.perf_counter() - started
    finally:
        event.remove(engine, "before_cursor_execute", count)
        db.session.remove()
    return answer, seconds, statements


def compare(url: str, runs: int) -> float:
    os.environ.update({k: v for k, v in _app_env(url).items() if k.startswith("CRM_")})
    from crm import create_app
    from crm.core.db import utcnow
    from crm.extensions import db
    from crm.privacy.queries import retention_schedule

    app = create_app()
    with app.app_context():
        settings = app.config["CRM"]
        now = utcnow()
        engine = db.engine
        timed(engine, lambda: retention_schedule(settings, now))  # warm up: connection, cache
        old, old_seconds, old_statements = timed(
            engine, lambda: schedule_one_person_at_a_time(settings, now)
        )
        new_runs = [timed(engine, lambda: retention_schedule(settings, now)) for _ in range(runs)]
        new, _, new_statements = new_runs[0]
        new_seconds = statistics.median(seconds for _, seconds, _ in new_runs)
        engine.dispose()
    if new != old:
        raise SystemExit(f"the lists differ: {len(new)} due set-wise, {len(old)} per person")
    held = sum(item.held for item in new)
    print(f"due now: {len(new):,} persons ({held:,} held), the same list from both")
    print(f"per person (baseline): {old_seconds:8.3f} s  {old_statements:>9,} statements")
    print(
        f"set-wise:              {new_seconds:8.3f} s  {new_statements:>9,} statements"
        f"  (median of {runs}: {', '.join(f'{s:.3f}' for _, s, _ in new_runs)})"
    )
    return old_seconds / new_seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--referrals", type=int, default=100_000, help="referrals loaded")
    parser.add_argument("--runs", type=int, default=5, help="timed runs of the set-wise one")
    args = parser.parse_args(argv)
    dbs = Databases(os.environ.get("CRM_BENCH_DATABASE_URL", DEFAULT_URL))
    print(f"load average: {os.getloadavg()}")
    try:
        ratio = compare(prepare(dbs, args.referrals), args.runs)
    finally:
        dbs.drop_all()
    mark = "met" if ratio >= GOAL else "MISSED"
    print(
        f"per person / set-wise at {args.referrals:,} referrals: {ratio:.1f}x"
        f"  goal >= {GOAL:g}x: {mark}"
    )
    print(f"load average: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

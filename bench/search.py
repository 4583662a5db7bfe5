"""Search benchmark: the pipeline search at 100,000 referrals against 1,000, in one run.

    .venv/bin/python bench/search.py         # about a minute on 2 cores

Two scratch PostgreSQL databases (named after CRM_BENCH_DATABASE_URL's database, default
postgresql+psycopg://postgres@127.0.0.1:5432/crm_bench, plus a random suffix), migrated
and bulk-loaded the way bench/api.py loads them (1,000 and 100,000 referrals), then:
one patient in 50 renamed `Müller` (a common, accented name), agency references made
fixed-width (`BULK-000771`), every referral's
`search_text` filled with the app's own folding (crm/referrals/search.py), VACUUM ANALYZE.
Each database is served by the real app (gunicorn, 2 sync workers); one client on
127.0.0.1 sends `GET /api/v1/referrals?q=...` with a staff token, the searches in turn,
alternating the two databases round by round after a warm-up. Printed per search: p50
and p95 at each size and the ratio of the p95s. Goal: p95(100k) / p95(1k) <= 1.5 for every
search, the one that matches nothing included.

Every server it starts is stopped and every scratch database dropped on the way out.
"""

from __future__ import annotations

import argparse
import http.client
import os
import secrets
import signal
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlencode

import psycopg

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
sys.path.insert(0, str(BENCH_DIR.parent))

from _common import DEFAULT_URL, HOST, ROOT, Databases  # noqa: E402 - beside this file
from api import (  # noqa: E402 - bench/api.py, beside this file
    Servers,
    _app_env,
    _percentile,
    _step,
    bulk_load,
    prepare_template,
)

from crm.referrals.search import search_text_of  # noqa: E402

GOAL = 1.5
# What a coordinator types; each finds the same referrals in both databases (ids up to
# 1,000) except the common name, which fills the first page at 100,000.
SEARCHES = (
    ("common accented name", "Müller"),
    ("email", "patient777@bench"),
    ("hospital reference", "R-000777"),
    ("phone, national format", "0151 0000 0777"),
    ("agency reference", "bulk-000771"),
    ("matches nothing", "zzqx-nobody"),
)


def fill_search_text(dbs: Databases, name: str) -> None:
    """Rename one patient in 50 `Müller`, then write every referral's search text with the
    app's own folding (through COPY into a temporary table), then VACUUM ANALYZE."""
    with psycopg.connect(dbs.libpq_url(name)) as connection:
        connection.execute("UPDATE patients SET family_name = 'Müller' WHERE id % 50 = 0")
        connection.execute(  # agencies' references have a fixed width: BULK-000771
            "UPDATE referrals SET agency_reference = 'BULK-' || lpad(id::text, 6, '0')"
            " WHERE agency_reference IS NOT NULL"
        )
        rows = connection.execute(
            "SELECT r.id, p.given_name, p.family_name, p.email, p.phone, r.agency_reference"
            " FROM referrals AS r JOIN patients AS p ON p.id = r.patient_id"
        ).fetchall()
        connection.execute("CREATE TEMP TABLE texts (id int PRIMARY KEY, search_text text)")
        with connection.cursor().copy("COPY texts (id, search_text) FROM STDIN") as copy:
            for rid, given, family, email, phone, reference in rows:
                patient = SimpleNamespace(
                    given_name=given, family_name=family, email=email, phone=phone
                )
                referral = SimpleNamespace(patient=patient, agency_reference=reference)
                copy.write_row((rid, search_text_of(referral)))
        connection.execute(
            "UPDATE referrals AS r SET search_text = t.search_text"
            " FROM texts AS t WHERE t.id = r.id"
        )
        connection.commit()
        connection.autocommit = True
        connection.execute("VACUUM ANALYZE")


def _get(port: int, path: str, token: str) -> tuple[float, int]:
    connection = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        started = time.perf_counter()
        connection.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        response = connection.getresponse()
        body = response.read()
        elapsed = time.perf_counter() - started
    finally:
        connection.close()
    if response.status != 200:
        raise RuntimeError(f"GET {path}: {response.status} {body[:300]!r}")
    return elapsed, body.count(b'"reference"')


def measure(ports: dict[str, int], token: str, args: argparse.Namespace):
    paths = {label: "/api/v1/referrals?" + urlencode({"q": q}) for label, q in SEARCHES}
    found: dict[str, dict[str, int]] = {size: {} for size in ports}
    for size, port in ports.items():
        for _ in range(args.warmup):
            for label, path in paths.items():
                found[size][label] = _get(port, path, token)[1]
    latencies = {size: {label: [] for label in paths} for size in ports}
    for _ in range(args.rounds):
        for size, port in ports.items():
            for _ in range(args.requests // args.rounds):
                for label, path in paths.items():
                    latencies[size][label].append(_get(port, path, token)[0])
    return latencies, found


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=120, help="per search and database")
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds")
    parser.add_argument("--warmup", type=int, default=5, help="warm-up requests per search")
    parser.add_argument("--small", type=int, default=1_000, help="referrals, small database")
    parser.add_argument("--large", type=int, default=100_000, help="referrals, large database")
    parser.add_argument("--keep", action="store_true", help="keep databases (debugging)")
    return parser.parse_args(argv)


def _summary(latencies, found, small: int, large: int) -> bool:
    print()
    print(
        f"{'search':<24} {'found 1k/100k':>14} {'p50 1k':>8} {'p95 1k':>8} "
        f"{'p50 100k':>9} {'p95 100k':>9} {'ratio':>6}"
    )
    met = True
    for label, _ in SEARCHES:
        s, lg = latencies["1k"][label], latencies["100k"][label]
        ratio = _percentile(lg, 95) / _percentile(s, 95)
        met = met and ratio <= GOAL
        print(
            f"{label:<24} {found['1k'][label]:>6}/{found['100k'][label]:<7}"
            f" {_percentile(s, 50) * 1000:6.1f}ms {_percentile(s, 95) * 1000:6.1f}ms"
            f" {_percentile(lg, 50) * 1000:7.1f}ms {_percentile(lg, 95) * 1000:7.1f}ms"
            f" {ratio:5.2f}x"
        )
    every_s = [v for vs in latencies["1k"].values() for v in vs]
    every_l = [v for vs in latencies["100k"].values() for v in vs]
    overall = _percentile(every_l, 95) / _percentile(every_s, 95)
    print(
        f"all searches: p95 {_percentile(every_s, 95) * 1000:.1f} ms at {small:,}, "
        f"{_percentile(every_l, 95) * 1000:.1f} ms at {large:,}: {overall:.2f}x "
        f"(goal <= {GOAL}x for each: {'met' if met else 'MISSED'})"
    )
    return met


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    dbs = Databases(os.environ.get("CRM_BENCH_DATABASE_URL", DEFAULT_URL))
    run_id = secrets.token_hex(3)
    names = {part: f"{dbs.prefix}_{run_id}_search_{part}" for part in ("tpl", "small", "large")}
    servers = Servers(Path(tempfile.mkdtemp(prefix="crm-bench-search-")))
    load_before = os.getloadavg()[0]
    try:
        with _step(f"template database {names['tpl']}"):
            creds = prepare_template(dbs, names["tpl"])
        for part, count in (("small", args.small), ("large", args.large)):
            with _step(f"bulk-load {count:,} referrals and their search text"):
                dbs.create(names[part], template=names["tpl"])
                bulk_load(dbs, names[part], count)
                fill_search_text(dbs, names[part])
        with _step(f"{len(SEARCHES)} searches, {args.requests} each per database"):
            ports = {}
            for size, part in (("1k", "small"), ("100k", "large")):
                env = _app_env(dbs.sqlalchemy_url(names[part]))
                ports[size] = servers.start(f"app-{part}", "wsgi:app", env, ROOT).port
            latencies, found = measure(ports, creds.staff_token, args)
        _summary(latencies, found, args.small, args.large)
        print(
            f"1-min load average {load_before:.1f} at start, {os.getloadavg()[0]:.1f} at end on "
            f"{os.cpu_count()} CPUs; other work on the machine skews the ratios"
        )
        return 0
    finally:
        servers.stop_all()
        if args.keep:
            print(f"kept databases: {', '.join(dbs.created)}")
        else:
            dbs.drop_all()


if __name__ == "__main__":
    sys.exit(main())

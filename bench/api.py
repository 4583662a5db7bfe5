"""API benchmark: the real app under gunicorn against a bare Flask + psycopg INSERT endpoint.

    .venv/bin/python bench/api.py            # about 75 seconds on 2 cores (well under 5 minutes)

What it does, all on 127.0.0.1 and in scratch PostgreSQL databases it creates and drops
(named after the database in CRM_BENCH_DATABASE_URL, default
postgresql+psycopg://postgres@127.0.0.1:5432/crm_bench, plus a random suffix):

1. Submit throughput, in the production configuration (`make run`'s nudge rules loaded,
   the message templates, the spend caps on; production mode with Redis rate limits).
   The app (gunicorn, 2 sync workers) takes POST /api/v1/referrals with valid bodies (a
   different patient each: phone, email, name and birth date), a distinct
   agency_reference and a unique Idempotency-Key each, authenticated with an agency API
   key. Two baselines take the same bodies, gunicorn, 2 workers each:
   bench/baseline_same_rows.py writes by hand, in one transaction, the rows a submission
   writes (goal: app / it >= 0.75), and bench/baseline_app.py does one INSERT (goal:
   app / it >= 0.35). All are driven for the same fixed time by the same client, in
   alternating rounds after a warm-up. Then the SQL statements of one submission are
   counted in-process (printed; tests/referrals/test_submit_statements.py guards them).
   In the same rounds the app also takes the same bodies with one field out of range
   (no Idempotency-Key): it authenticates, counts the rate limits and validates, then
   answers 422 having read one row and written none. That is the most any submission
   through this stack (Flask, flask-smorest/marshmallow, Flask-Limiter, SQLAlchemy) can
   reach on the machine, whatever it writes; its ratios are printed beside the goals.
2. Pipeline list latency. GET /api/v1/referrals?limit=50 with a staff token (the first
   page, and the first page of a stage filter) against a database holding 1,000
   referrals and one holding 100,000 (bulk-loaded with INSERT ... SELECT generate_series,
   then VACUUM ANALYZE). Goal: p95(100k) / p95(1k) <= 1.3.

Load always comes from separate client processes (threads with keep-alive
http.client connections; gunicorn's sync workers close each connection, the client
reopens it). Every server it starts is stopped and every scratch database dropped on the
way out, errors included. Exit status 0 when the run completes, whatever the ratios.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import itertools
import json
import math
import multiprocessing
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path

import psycopg
from _common import DEFAULT_URL, HOST, PIPELINE, ROOT, Databases, bin_path, free_port, run_flask

BENCH_DIR = Path(__file__).resolve().parent
SAME_ROWS_GOAL = 0.75
INSERT_GOAL = 0.35
LIST_GOAL = 1.3

# How a mature pipeline is spread over the stages (percent).
STAGE_WEIGHTS = (
    ("enquiry", 14),
    ("awaiting_mri", 12),
    ("mri_review", 7),
    ("plan_offered", 8),
    ("plan_accepted", 5),
    ("travel_booked", 4),
    ("in_treatment", 2),
    ("post_op", 3),
    ("follow_up", 6),
    ("completed", 17),
    ("lost", 17),
    ("on_hold", 5),
)
LOST_REASONS = ("price", "unreachable", "chose_another_provider", "not_a_candidate", "other")
LIST_STAGE_FILTER = "awaiting_mri"


# --------------------------------------------------------------------------- databases


def _last_line(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    if not lines:
        raise RuntimeError("expected a secret on the last line, got nothing")
    return lines[-1]


@dataclass(frozen=True)
class Credentials:
    agency_key: str
    staff_token: str


def prepare_template(dbs: Databases, name: str) -> Credentials:
    """Migrate, load the catalogue, create an agency with a key and a coordinator."""
    dbs.create(name)
    env = _app_env(dbs.sqlalchemy_url(name))
    run_flask(env, "db", "upgrade")
    run_flask(env, "crm", "load-catalogue")
    run_flask(env, "crm", "load-nudge-rules")  # production runs with the rules (make run's)
    key = _last_line(run_flask(env, "crm", "create-agency", "Bench Agency", "--country", "DE"))
    token = _last_line(
        run_flask(env, "crm", "create-staff", "x@y", "--name", "X", "--role", "coordinator")
    )
    return Credentials(key, token)


def _stage_case(column: str) -> str:
    """CASE picking a stage from a uniform random `column` by STAGE_WEIGHTS."""
    total = sum(weight for _, weight in STAGE_WEIGHTS)
    parts, cumulative = [], 0
    for stage, weight in STAGE_WEIGHTS[:-1]:
        cumulative += weight
        parts.append(f"WHEN {column} < {cumulative / total:.4f} THEN '{stage}'")
    return f"CASE {' '.join(parts)} ELSE '{STAGE_WEIGHTS[-1][0]}' END"


def _pg_array(values: tuple[str, ...]) -> str:
    return "ARRAY[" + ", ".join(f"'{value}'" for value in values) + "]::text[]"


def bulk_load(dbs: Databases, name: str, count: int) -> None:
    """`count` referrals spread over the stages and two years, with patients, consents
    and the stage history each path implies; then VACUUM ANALYZE."""
    pipeline = _pg_array(PIPELINE)
    reasons = _pg_array(LOST_REASONS)
    statements = [
        "SELECT setseed(0.42)",
        f"""
        CREATE TEMP TABLE spec AS
        WITH raw AS (
            SELECT g AS n, random() AS r_stage, random() AS r_from, random() AS r_upd,
                   random() AS r_age, random() AS r_agency, random() AS r_owner
            FROM generate_series(1, {count}) AS g
        ), staged AS (
            SELECT *, {_stage_case("r_stage")} AS stage FROM raw
        )
        SELECT n, stage,
               CASE WHEN stage IN ('lost', 'on_hold') THEN floor(r_from * 4)::int
                    ELSE array_position({pipeline}, stage) - 1 END AS last_ord,
               now() - r_upd * interval '730 days' AS updated_at,
               now() - r_upd * interval '730 days'
                     - interval '1 hour' - r_age * interval '120 days' AS created_at,
               r_agency < 0.75 AS via_agency,
               r_owner < 0.6 AS owned
        FROM staged
        """,
        """
        ALTER TABLE spec ADD COLUMN moves int;
        UPDATE spec SET moves = last_ord + CASE WHEN stage IN ('lost', 'on_hold')
                                                THEN 1 ELSE 0 END
        """,
        """
        INSERT INTO patients (id, agency_id, given_name, family_name, date_of_birth, sex,
                              country, phone, email, language, time_zone,
                              created_at, updated_at)
        SELECT s.n,
               CASE WHEN s.via_agency THEN (SELECT min(id) FROM agencies) END,
               (ARRAY['Jonas','Anna','Mehmet','Sara','Lukas','Elif','Oliver','Mia'])
                   [1 + s.n % 8],
               'Bench' || s.n,
               date '1950-01-01' + (s.n * 37) % 18000,
               (ARRAY['male','female','other','unknown'])[1 + s.n % 4],
               (ARRAY['DE','NL','GB','AT','CH'])[1 + s.n % 5],
               '+49151' || lpad(s.n::text, 8, '0'),
               'patient' || s.n || '@bench.example',
               (ARRAY['de','nl','en','de','de'])[1 + s.n % 5],
               (ARRAY['Europe/Berlin','Europe/Amsterdam','Europe/London',
                      'Europe/Vienna','Europe/Zurich'])[1 + s.n % 5],
               s.created_at, s.updated_at
        FROM spec AS s
        """,
        """
        INSERT INTO patient_consents (patient_id, channel, granted, recorded_at, source)
        SELECT s.n, c.channel, (s.n + c.k) % 7 <> 0, s.created_at, 'signed intake form'
        FROM spec AS s CROSS JOIN (VALUES ('sms', 0), ('email', 3)) AS c(channel, k)
        """,
        f"""
        INSERT INTO referrals (id, patient_id, agency_id, procedure_id, owner_id, stage,
                               stage_entered_at, held_from_stage, lost_reason,
                               agency_reference, complaints, symptom_duration_weeks,
                               treatments_tried, pain_score, intake_notes,
                               created_at, updated_at)
        SELECT s.n, s.n,
               CASE WHEN s.via_agency THEN (SELECT min(id) FROM agencies) END,
               (SELECT id FROM procedures WHERE code = 'microdiscectomy'),
               CASE WHEN s.owned THEN (SELECT min(id) FROM staff_users) END,
               s.stage,
               s.updated_at,
               CASE WHEN s.stage = 'on_hold' THEN ({pipeline})[s.last_ord + 1] END,
               CASE WHEN s.stage = 'lost' THEN ({reasons})[1 + s.n % 5] END,
               CASE WHEN s.via_agency THEN 'BULK-' || s.n END,
               '["severe_persistent_low_back_pain", "radiating_leg_pain"]'::json,
               4 + s.n % 50,
               '[{{"treatment": "physical_therapy", "duration_weeks": 8}}]'::json,
               s.n % 11,
               'bulk-loaded for the benchmark',
               s.created_at, s.updated_at
        FROM spec AS s
        """,
        f"""
        INSERT INTO stage_transitions (referral_id, from_stage, to_stage, actor_type,
                                       actor_id, actor_label, reason, note, occurred_at)
        SELECT s.n,
               CASE WHEN j = 0 THEN NULL
                    WHEN j <= s.last_ord THEN ({pipeline})[j]
                    ELSE ({pipeline})[s.last_ord + 1] END,
               CASE WHEN j <= s.last_ord THEN ({pipeline})[j + 1] ELSE s.stage END,
               CASE WHEN j = 0 AND s.via_agency THEN 'agency' ELSE 'staff' END,
               1,
               CASE WHEN j = 0 AND s.via_agency THEN 'Bench Agency' ELSE 'X' END,
               CASE WHEN j > s.last_ord AND s.stage = 'lost'
                    THEN ({reasons})[1 + s.n % 5] END,
               CASE WHEN j = 0 THEN 'referral submitted' END,
               s.created_at + (s.updated_at - s.created_at) * j / greatest(s.moves, 1)
        FROM spec AS s CROSS JOIN LATERAL generate_series(0, s.moves) AS j
        """,
        "SELECT setval(pg_get_serial_sequence('patients', 'id'), (SELECT max(id) FROM patients))",
        "SELECT setval(pg_get_serial_sequence('referrals', 'id'), (SELECT max(id) FROM referrals))",
    ]
    with psycopg.connect(dbs.libpq_url(name)) as connection:
        with connection.transaction():
            for statement in statements:
                connection.execute(statement)
        connection.autocommit = True
        connection.execute("VACUUM ANALYZE")


# --------------------------------------------------------------------------- servers


def _app_env(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
    env.update(
        CRM_DATABASE_URL=database_url,
        CRM_ENV="production",
        CRM_SECRET_KEY=secrets.token_urlsafe(48),
        # production counts rate limits in Redis (one round trip a request); limits far
        # above what the bench sends, so none is ever refused
        CRM_RATE_LIMIT_STORAGE_URL=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"),
        CRM_RATE_LIMIT_PER_KEY="1000000 per minute",
        CRM_RATE_LIMIT_PER_AGENCY="1000000 per minute",
        # the SMS spend caps likewise: the defaults (500 an agency a day) are passed after
        # the first 500 submissions, and from then on every one measured the held-nudge
        # path (the counters taken back, a coordinator task each), not a normal submission
        CRM_SMS_CAP_AGENCY_DAILY="100000000",
        CRM_SMS_CAP_GLOBAL_HOURLY="100000000",
        CRM_LOG_LEVEL="WARNING",
        CRM_OUTBOX_FILE_DIR=str(Path(tempfile.gettempdir()) / "crm-bench-outbox"),
        # production refuses to store documents without a master key (a fresh one a run)
        CRM_DOCUMENTS_MASTER_KEYS="bench:" + base64.b64encode(secrets.token_bytes(32)).decode(),
    )
    return env


@dataclass
class Server:
    label: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self, lines: int = 30) -> str:
        with suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


class Servers:
    """Every gunicorn this run starts; `stop_all` ends them (their process groups only)."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.running: list[Server] = []

    def start(self, label: str, app: str, env: dict[str, str], chdir: Path) -> Server:
        port = free_port()
        log_path = self.log_dir / f"{label}.log"
        command = [
            bin_path("gunicorn"),
            "--workers",
            "2",
            "--bind",
            f"{HOST}:{port}",
            "--chdir",
            str(chdir),
            "--log-level",
            "warning",
            "--timeout",
            "60",
            app,
        ]
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                command,
                cwd=chdir,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        server = Server(label, port, process, log_path)
        self.running.append(server)
        self._wait_ready(server)
        return server

    @staticmethod
    def _wait_ready(server: Server, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise RuntimeError(f"{server.label} exited at start:\n{server.log_tail()}")
            with suppress(OSError, http.client.HTTPException):
                connection = http.client.HTTPConnection(HOST, server.port, timeout=2)
                connection.request("GET", "/healthz")
                if connection.getresponse().status == 200:
                    connection.close()
                    return
            time.sleep(0.2)
        raise RuntimeError(f"{server.label} not ready after {timeout}s:\n{server.log_tail()}")

    def stop(self, server: Server) -> None:
        if server.process.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(server.process.pid, signal.SIGTERM)
            try:
                server.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):
                    os.killpg(server.process.pid, signal.SIGKILL)
                server.process.wait(timeout=5)
        if server in self.running:
            self.running.remove(server)

    def stop_all(self) -> None:
        for server in list(self.running):
            with suppress(Exception):
                self.stop(server)


# --------------------------------------------------------------------------- load client


@dataclass(frozen=True)
class LoadSpec:
    """One client process: `threads` connections to port, for `seconds` or `requests`."""

    port: int
    kind: str  # "submit_app", "submit_refused", "submit_same_rows", "submit_baseline", "list"
    threads: int
    token: str
    tag: str
    seconds: float = 0.0
    requests: int = 0
    expect: int = 200


@dataclass
class LoadResult:
    ok: int = 0
    elapsed: float = 0.0
    client_cpu: float = 0.0
    statuses: Counter[int] = field(default_factory=Counter)
    latencies: dict[str, list[float]] = field(default_factory=dict)
    sample_error: str = ""


_SURNAMES = (
    "Weber",
    "Schmidt",
    "Yilmaz",
    "Kaya",
    "Haddad",
    "Nasser",
    "Ivanova",
    "Petrov",
    "Becker",
    "Fischer",
    "Demir",
    "Sahin",
    "Karim",
    "Mansour",
    "Smirnov",
    "Volkov",
    "Wagner",
    "Hoffmann",
    "Celik",
    "Aydin",
    "Saleh",
    "Khalil",
    "Popov",
    "Kuznetsov",
    "Schulz",
    "Koch",
    "Arslan",
    "Dogan",
    "Hassan",
    "Farouk",
    "Sokolov",
    "Lebedev",
    "Richter",
    "Klein",
    "Ozturk",
    "Polat",
    "Aziz",
    "Rahman",
    "Novikov",
    "Morozov",
)


def _submit_body(reference: str) -> bytes:
    # A distinct patient each (phone too): with one shared number every submission would
    # be a duplicate candidate of all the earlier ones (crm/duplicates), not real traffic.
    digest = int(hashlib.sha256(reference.encode()).hexdigest(), 16)
    phone = f"+49151{digest % 10**8:08d}"
    # Born on different days (like real patients): with one shared birth date every
    # submission would read all the earlier ones as name-match candidates.
    born = f"{1940 + digest % 60}-{1 + digest // 7 % 12:02d}-{1 + digest // 101 % 28:02d}"
    given = ("Jonas", "Anna", "Mehmet", "Sara", "Lukas", "Elif", "Oliver", "Mia")[digest % 8]
    # and named differently: "Weber <reference>" for all would make every one born the same
    # day as another a likely duplicate (a coordinator task each), which real traffic is not
    family = _SURNAMES[digest // 1009 % len(_SURNAMES)]
    body = {
        "procedure": "microdiscectomy",
        "agency_reference": reference,
        "patient": {
            "given_name": given,
            "family_name": family,
            "date_of_birth": born,
            "sex": "male",
            "country": "DE",
            "phone": phone,
            "email": f"jonas.{reference.lower()}@patient.example",
            "language": "de",
            "time_zone": "Europe/Berlin",
            "consents": {"sms": True, "email": True, "source": "signed intake form"},
        },
        "intake": {
            "complaints": ["severe_persistent_low_back_pain", "radiating_leg_pain"],
            "symptom_duration_weeks": 16,
            "treatments_tried": [{"treatment": "physical_therapy", "duration_weeks": 8}],
            "pain_score": 7,
            "notes": "pain worse when sitting",
        },
    }
    return json.dumps(body).encode()


def _refused_body(reference: str) -> bytes:
    """A submission the schema refuses at its last field (422), after reading every other."""
    body = json.loads(_submit_body(reference))
    body["intake"]["pain_score"] = 11
    return json.dumps(body).encode()


def _requests_for(
    spec: LoadSpec, worker: int
) -> Iterator[tuple[str, str, str, bytes | None, dict]]:
    """(variant, method, path, body, headers) forever."""
    auth = {"Authorization": f"Bearer {spec.token}"} if spec.token else {}
    for i in itertools.count():
        if spec.kind == "list":
            if i % 2 == 0:
                yield "first page", "GET", "/api/v1/referrals?limit=50", None, auth
            else:
                path = f"/api/v1/referrals?limit=50&stage={LIST_STAGE_FILTER}"
                yield "stage page", "GET", path, None, auth
            continue
        reference = f"{spec.tag}-{os.getpid()}-{worker}-{i}"
        headers = {**auth, "Content-Type": "application/json"}
        if spec.kind == "submit_app":
            headers["Idempotency-Key"] = f"bench-{reference}"
            yield "submit", "POST", "/api/v1/referrals", _submit_body(reference), headers
        elif spec.kind == "submit_refused":
            yield "refused", "POST", "/api/v1/referrals", _refused_body(reference), headers
        elif spec.kind == "submit_same_rows":
            yield "submit", "POST", "/referrals", _submit_body(reference), headers
        else:
            yield "submit", "POST", "/items", _submit_body(reference), headers


def run_load(spec: LoadSpec) -> LoadResult:
    """Runs in a client process: spec.threads connections, each a closed loop."""
    result = LoadResult()
    lock = threading.Lock()
    budget = itertools.count()
    deadline_box: list[float] = [0.0]
    start_gate = threading.Barrier(spec.threads + 1)

    def worker(index: int) -> None:
        connection = http.client.HTTPConnection(HOST, spec.port, timeout=30)
        statuses: Counter[int] = Counter()
        latencies: dict[str, list[float]] = {}
        ok, error = 0, ""
        requests_iter = _requests_for(spec, index)
        start_gate.wait()
        while True:
            if spec.requests:
                if next(budget) >= spec.requests:
                    break
            elif time.perf_counter() >= deadline_box[0]:
                break
            variant, method, path, body, headers = next(requests_iter)
            began = time.perf_counter()
            try:
                connection.request(method, path, body=body, headers=headers)
                response = connection.getresponse()
                payload = response.read()
                status = response.status
                if response.will_close:
                    connection.close()
            except (OSError, http.client.HTTPException) as exc:
                connection.close()
                status, payload = 0, repr(exc).encode()
            spent = time.perf_counter() - began
            statuses[status] += 1
            if status == spec.expect:
                ok += 1
                latencies.setdefault(variant, []).append(spent)
            elif not error:
                error = f"{method} {path} -> {status}: {payload[:400]!r}"
        connection.close()
        with lock:
            result.ok += ok
            result.statuses.update(statuses)
            for variant, values in latencies.items():
                result.latencies.setdefault(variant, []).extend(values)
            result.sample_error = result.sample_error or error

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(spec.threads)]
    for thread in threads:
        thread.start()
    began, cpu_began = time.perf_counter(), time.process_time()
    deadline_box[0] = began + spec.seconds
    start_gate.wait()
    for thread in threads:
        thread.join(timeout=spec.seconds + 120)
    result.elapsed = time.perf_counter() - began
    result.client_cpu = time.process_time() - cpu_began
    return result


class Client:
    """Load from a separate process (spawned, so it shares nothing with this one)."""

    def __init__(self) -> None:
        self._pool = multiprocessing.get_context("spawn").Pool(1)

    def run(self, spec: LoadSpec) -> LoadResult:
        timeout = spec.seconds + 180 if spec.seconds else 300
        return self._pool.apply_async(run_load, (spec,)).get(timeout=timeout)

    def close(self) -> None:
        self._pool.terminate()
        self._pool.join()


# --------------------------------------------------------------------------- measurements


def _percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = max(0, math.ceil(pct / 100 * len(ordered)) - 1)
    return ordered[rank]


def _check(label: str, result: LoadResult, expect: int) -> None:
    bad = {status: n for status, n in result.statuses.items() if status != expect}
    if bad:
        print(f"  ! {label}: unexpected statuses {bad}; e.g. {result.sample_error}")
    if result.ok == 0:
        raise RuntimeError(f"{label}: no successful request; {result.sample_error}")


@dataclass
class Throughput:
    ok: int = 0
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0


def measure_submit(
    client: Client, servers: dict[str, Server], key: str, args: argparse.Namespace
) -> dict[str, Throughput]:
    """The app and both baselines, in alternating rounds, same client and connections."""
    kinds = {
        "app": ("app", "submit_app", 201),
        "refused": ("app", "submit_refused", 422),
        "same_rows": ("same_rows", "submit_same_rows", 201),
        "insert": ("insert", "submit_baseline", 201),
    }
    targets = {
        name: LoadSpec(
            servers[server].port,
            kind,
            args.concurrency,
            "" if name == "insert" else key,
            "",
            expect=expect,
        )
        for name, (server, kind, expect) in kinds.items()
    }
    totals = {name: Throughput() for name in targets}
    for name, spec in targets.items():
        warm = replace(spec, seconds=args.warmup, tag=f"W{name}{secrets.token_hex(2)}")
        _check(f"{name} warm-up", client.run(warm), spec.expect)
    for round_no in range(1, args.rounds + 1):
        for name, spec in targets.items():
            tag = f"R{round_no}{name}{secrets.token_hex(2)}"
            timed = replace(spec, seconds=args.seconds, tag=tag)
            result = client.run(timed)
            _check(f"{name} round {round_no}", result, spec.expect)
            totals[name].ok += result.ok
            totals[name].seconds += result.elapsed
            print(
                f"  round {round_no} {name:<9}: {result.ok / result.elapsed:8.1f} req/s"
                f"  (client process busy {result.client_cpu / result.elapsed:.0%} of a core)"
            )
    return totals


_COUNT_STATEMENTS = """
import json, sys
from sqlalchemy import event
from wsgi import app
from crm.extensions import db
body, key = json.loads(sys.argv[1]), sys.argv[2]
statements = []
with app.app_context():
    event.listen(db.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
client = app.test_client()
for n in range(2):  # the first fills the process caches, as in a running service
    statements.clear()
    headers = {"Authorization": "Bearer " + key, "Idempotency-Key": f"count-{n}"}
    body["agency_reference"] = f"COUNT-{n}"
    body["patient"]["phone"] = f"+4915199990{n:03d}"
    # another person each time: the same email, or birth date and name, makes the second a
    # duplicate of the first (a match, its audit and a task: not a normal submission)
    body["patient"]["email"] = f"count-{n}@patient.example"
    body["patient"]["date_of_birth"] = f"{1950 + n}-03-0{1 + n}"
    response = client.post("/api/v1/referrals", json=body, headers=headers)
    assert response.status_code == 201, response.get_data(as_text=True)
print(len(statements))
"""


def count_submit_statements(env: dict[str, str], key: str) -> int:
    """SQL statements of one submission (with its Idempotency-Key) in the production
    configuration, caches warm: the figure tests/referrals/test_submit_statements.py guards."""
    body = _submit_body(f"count-{secrets.token_hex(3)}").decode()
    result = subprocess.run(
        [bin_path("python"), "-c", _COUNT_STATEMENTS, body, key],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"counting statements failed:\n{result.stderr[-2000:]}")
    return int(result.stdout.strip().splitlines()[-1])


def measure_list(
    client: Client, small: Server, large: Server, token: str, args: argparse.Namespace
) -> dict[str, dict[str, list[float]]]:
    servers = {"1k": small, "100k": large}
    latencies: dict[str, dict[str, list[float]]] = {"1k": {}, "100k": {}}
    for name, server in servers.items():
        warm = LoadSpec(server.port, "list", args.list_concurrency, token, "", requests=60)
        _check(f"list {name} warm-up", client.run(warm), 200)
    per_round = max(2, args.list_requests // args.rounds)
    for round_no in range(1, args.rounds + 1):
        for name, server in servers.items():
            spec = LoadSpec(
                server.port, "list", args.list_concurrency, token, "", requests=per_round
            )
            result = client.run(spec)
            _check(f"list {name} round {round_no}", result, 200)
            for variant, values in result.latencies.items():
                latencies[name].setdefault(variant, []).extend(values)
            every = [v for values in result.latencies.values() for v in values]
            print(
                f"  round {round_no} {name:<5}: p50 {_percentile(every, 50) * 1000:6.1f} ms"
                f"  p95 {_percentile(every, 95) * 1000:6.1f} ms  ({result.ok} requests)"
            )
    return latencies


# --------------------------------------------------------------------------- main


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per submit round")
    parser.add_argument("--warmup", type=float, default=3.0, help="submit warm-up seconds")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds")
    parser.add_argument("--concurrency", type=int, default=4, help="submit connections")
    parser.add_argument("--list-requests", type=int, default=600, help="per database")
    parser.add_argument("--list-concurrency", type=int, default=2, help="list connections")
    parser.add_argument("--small", type=int, default=1_000, help="referrals, small database")
    parser.add_argument("--large", type=int, default=100_000, help="referrals, large database")
    parser.add_argument("--keep", action="store_true", help="keep databases (debugging)")
    return parser.parse_args(argv)


@contextmanager
def _step(title: str) -> Iterator[None]:
    began = time.perf_counter()
    print(f"- {title} ...", flush=True)
    yield
    print(f"  done in {time.perf_counter() - began:.1f}s", flush=True)


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # so that `finally` stops the servers and drops databases


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _exit_on_signal)
    url = os.environ.get("CRM_BENCH_DATABASE_URL", DEFAULT_URL)
    dbs = Databases(url)
    run_id = secrets.token_hex(3)
    names = {
        part: f"{dbs.prefix}_{run_id}_{part}"
        for part in ("tpl", "submit", "same", "baseline", "count", "small", "large")
    }
    log_dir = Path(tempfile.mkdtemp(prefix="crm-bench-"))
    servers = Servers(log_dir)
    client: Client | None = None
    started, load_before = time.perf_counter(), os.getloadavg()[0]
    try:
        with _step(f"template database {names['tpl']}: migrate, catalogue, agency, staff"):
            creds = prepare_template(dbs, names["tpl"])
        with _step(f"bulk-load {args.small:,} and {args.large:,} referrals"):
            for part, count in (("small", args.small), ("large", args.large)):
                dbs.create(names[part], template=names["tpl"])
                bulk_load(dbs, names[part], count)
        dbs.create(names["submit"], template=names["tpl"])
        dbs.create(names["same"], template=names["tpl"])
        dbs.create(names["baseline"])
        with psycopg.connect(dbs.libpq_url(names["baseline"]), autocommit=True) as connection:
            connection.execute(
                "CREATE TABLE bench_items (id bigserial PRIMARY KEY, reference text NOT NULL,"
                " body jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"
            )
        client = Client()

        with _step(f"submit throughput, {args.concurrency} connections"):
            submit_env = _app_env(dbs.sqlalchemy_url(names["submit"]))
            targets = {
                "app": servers.start("app-submit", "wsgi:app", submit_env, ROOT),
                "same_rows": servers.start(
                    "baseline-same-rows",
                    "baseline_same_rows:app",
                    {**os.environ, "BENCH_BASELINE_DSN": dbs.libpq_url(names["same"])},
                    BENCH_DIR,
                ),
                "insert": servers.start(
                    "baseline-insert",
                    "baseline_app:app",
                    {**os.environ, "BENCH_BASELINE_DSN": dbs.libpq_url(names["baseline"])},
                    BENCH_DIR,
                ),
            }
            rates = measure_submit(client, targets, creds.agency_key, args)
            servers.stop_all()
            # counted on a fresh copy: the loaded database's thousands of earlier patients
            # make the odd submission a likely duplicate (a task and its rows), by chance
            dbs.create(names["count"], template=names["tpl"])
            count_env = _app_env(dbs.sqlalchemy_url(names["count"]))
            statements = count_submit_statements(count_env, creds.agency_key)

        with _step(f"pipeline list latency, {args.list_concurrency} connections"):
            small = servers.start(
                "app-small", "wsgi:app", _app_env(dbs.sqlalchemy_url(names["small"])), ROOT
            )
            large = servers.start(
                "app-large", "wsgi:app", _app_env(dbs.sqlalchemy_url(names["large"])), ROOT
            )
            latencies = measure_list(client, small, large, creds.staff_token, args)
            servers.stop_all()

        _summary(args, rates, statements, latencies, time.perf_counter() - started)
        print(
            f"1-min load average {load_before:.1f} at start, {os.getloadavg()[0]:.1f} at end on "
            f"{os.cpu_count()} CPUs; other work on the machine skews both ratios"
        )
        return 0
    finally:
        if client is not None:
            client.close()
        servers.stop_all()
        if args.keep:
            print(f"kept databases: {', '.join(dbs.created)}")
        else:
            dbs.drop_all()


def _submit_bound(rates: dict[str, Throughput]) -> float:
    """The most submissions a second this stack could serve here: the refused request's
    time (what every submission does before it writes) plus the rows' own time, priced as
    the same-rows endpoint's time less the single-INSERT endpoint's."""
    seconds = 1 / rates["refused"].rate + 1 / rates["same_rows"].rate - 1 / rates["insert"].rate
    return 1 / seconds if seconds > 0 else math.nan


def _summary(
    args: argparse.Namespace,
    rates: dict[str, Throughput],
    statements: int,
    latencies: dict[str, dict[str, list[float]]],
    runtime: float,
) -> None:
    def ms(values: list[float], pct: float) -> str:
        return f"{_percentile(values, pct) * 1000:.1f} ms"

    def ratio(name: str, of: str = "app") -> float:
        base = rates[name].rate
        return rates[of].rate / base if base else math.nan

    every = {name: [v for vs in by.values() for v in vs] for name, by in latencies.items()}
    small_p95 = _percentile(every["1k"], 95)
    large_p95 = _percentile(every["100k"], 95)
    list_ratio = large_p95 / small_p95 if small_p95 else math.nan
    verdict = {True: "meets goal", False: "MISSES goal"}
    app = rates["app"]
    print()
    print("=" * 78)
    print(f"summary ({runtime:.0f}s; gunicorn 2 sync workers each; load from a client process)")
    print(
        f"submit, production configuration (nudge rules loaded, templates, spend caps): "
        f"app {app.rate:.0f} req/s, {statements} SQL statements per submission "
        f"(Idempotency-Key included); {args.concurrency} connections"
    )
    for name, label, goal in (
        ("same_rows", "a bare Flask + psycopg endpoint writing the same rows", SAME_ROWS_GOAL),
        ("insert", "a bare Flask + psycopg single INSERT", INSERT_GOAL),
    ):
        value = ratio(name)
        print(
            f"  vs {label}: {value:.2f}x ({rates[name].rate:.0f} req/s) - "
            f"{verdict[value >= goal]} >= {goal}x"
        )
    refused, bound = rates["refused"].rate, _submit_bound(rates)
    print(
        f"the stack's floor: the app refusing the same bodies at validation (authenticated, "
        f"rate-limited, validated; one row read, none written) {refused:.0f} req/s"
    )
    print(
        f"  a submission must do that and write the rows, which cost the bare endpoints "
        f"1/same_rows - 1/insert of a second each: at most {bound:.0f} req/s, "
        f"{bound / rates['same_rows'].rate:.2f}x of the same rows and "
        f"{bound / rates['insert'].rate:.2f}x of the single INSERT, however lean its code"
    )
    print(
        f"pipeline list p95 ratio 100k/1k: {list_ratio:.2f}x "
        f"(p95 {large_p95 * 1000:.1f} ms with {args.large:,} referrals, "
        f"{small_p95 * 1000:.1f} ms with {args.small:,}; limit=50, "
        f"{len(every['100k'])} + {len(every['1k'])} requests) - "
        f"{verdict[list_ratio <= LIST_GOAL]} <= {LIST_GOAL}x"
    )
    for name in ("1k", "100k"):
        for variant, values in sorted(latencies[name].items()):
            print(
                f"  list {name:<5} {variant:<10}: p50 {ms(values, 50)}, p95 {ms(values, 95)}, "
                f"max {ms(values, 100)}, mean {statistics.fmean(values) * 1000:.1f} ms"
            )
    print("=" * 78)


if __name__ == "__main__":
    sys.exit(main())

"""A bounded soak: the real app under mixed traffic for minutes, on 127.0.0.1.

    .venv/bin/python bench/soak.py                 # 3 minutes, 2 workers, 20 requests/s
    .venv/bin/python bench/soak.py --minutes 15 --workers 4 --rate 40

What runs: a scratch PostgreSQL database (named after CRM_BENCH_DATABASE_URL, default
postgresql+psycopg://postgres@127.0.0.1:5432/crm_bench, plus a suffix; dropped at the
end), migrated, with the catalogue and nudge rules; gunicorn with --workers sync workers
(PROMETHEUS_MULTIPROC_DIR set, rate limits in Redis at 127.0.0.1:6379 when it answers,
as production has them, else in memory); `python -m crm.scheduler` (dispatch every
second, sweep every 5 s) sending SMS to the fake Twilio server (tests/fakes) and email to
the file outbox. A plain client (threads, one request at a time each) paces requests at
--rate a second, mixed: agency submits (with an Idempotency-Key), agency list and
detail reads, staff pipeline reads, detail reads and stage moves (enquiry -> awaiting
MRI, which writes nudges the scheduler later sends).

It prints the requests made, errors (anything but the expected status or a dropped
connection; goal 0), p50/p95 per kind and overall, what the dispatcher sent, and every
worker's and the scheduler's resident memory (RSS) after a 20-second warm-up and at the
end. Goal: growth under 25 MB a process over the run (flat: Python's allocator keeps
what it once used, so a few MB of early growth is normal; a leak grows with requests).
Exit status 0 when the goals are met, 1 otherwise.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import random
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from contextlib import ExitStack, suppress
from pathlib import Path

import psycopg
from _common import DEFAULT_URL, ROOT, free_port

sys.path.insert(0, str(ROOT))
from tests.fakes.twilio_server import running_fake_twilio

BIN = Path(sys.executable).parent
WARMUP = 20.0
SCHEDULER_ARGS = ("--dispatch-seconds", "1", "--sweep-seconds", "5")
RSS_GOAL_MB = 25.0
MIX = (  # kind, weight
    ("agency submit", 20),
    ("agency list", 20),
    ("agency detail", 15),
    ("staff list", 20),
    ("staff detail", 15),
    ("staff move", 10),
)


def _redis_answers() -> bool:
    with suppress(OSError), socket.create_connection(("127.0.0.1", 6379), timeout=1) as s:
        s.sendall(b"PING\r\n")
        return s.recv(16).startswith(b"+PONG")
    return False


def _env(url: str, tmp: Path, fake, redis: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
    env.update(
        CRM_DATABASE_URL=url,
        CRM_ENV="production" if redis else "development",
        CRM_SECRET_KEY=secrets.token_urlsafe(48),
        # production refuses to start without a master key for documents at rest
        CRM_DOCUMENTS_MASTER_KEYS=f"soak:{base64.b64encode(secrets.token_bytes(32)).decode()}",
        CRM_LOG_LEVEL="WARNING",
        CRM_OUTBOX_FILE_DIR=str(tmp / "outbox"),
        CRM_DOCUMENTS_DIR=str(tmp / "documents"),
        CRM_RATE_LIMIT_PER_KEY="1000000 per minute",
        CRM_RATE_LIMIT_PER_AGENCY="1000000 per minute",
        CRM_QUIET_HOURS="00:00-00:00",
        CRM_TWILIO_ACCOUNT_SID=fake.account_sid,
        CRM_TWILIO_AUTH_TOKEN=fake.auth_token or "",
        CRM_TWILIO_FROM_NUMBER="+15005550006",
        CRM_TWILIO_BASE_URL=fake.base_url,
        PROMETHEUS_MULTIPROC_DIR=str(tmp / "metrics"),
    )
    if redis:
        env["CRM_RATE_LIMIT_STORAGE_URL"] = "redis://127.0.0.1:6379/0"
    (tmp / "metrics").mkdir(exist_ok=True)
    return env


def _flask(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [str(BIN / "flask"), "--app", "wsgi", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        with suppress(OSError, IndexError):
            if entry.isdigit():
                stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
                if int(stat[1]) == pid:
                    found.append(int(entry))
    return sorted(found)


class Client:
    """Paced mixed traffic; latencies by kind, errors counted with their reason."""

    def __init__(self, port: int, agency_key: str, staff_token: str, rate: float) -> None:
        self.port, self.rate = port, rate
        self.agency = {"Authorization": f"Bearer {agency_key}"}
        self.staff = {"Authorization": f"Bearer {staff_token}"}
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.errors: Counter = Counter()
        self.ids: list[int] = []
        self.in_enquiry: list[int] = []
        self.lock = threading.Lock()
        self.next_slot = time.monotonic()

    def _call(self, method: str, path: str, headers: dict, body=None) -> tuple[int, object]:
        data = json.dumps(body).encode() if body is not None else None
        sent = {**headers, **({"Content-Type": "application/json"} if data else {})}
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request(method, path, body=data, headers=sent)
            response = conn.getresponse()
            raw = response.read()
            return response.status, (json.loads(raw) if raw else None)
        finally:
            conn.close()

    def _slot(self) -> None:
        """Open-loop pacing: one request every 1/rate seconds across all threads."""
        with self.lock:
            self.next_slot = max(self.next_slot + 1 / self.rate, time.monotonic() - 1)
            wait = self.next_slot - time.monotonic()
        if wait > 0:
            time.sleep(wait)

    def _pick(self, rng: random.Random) -> str:
        kinds, weights = zip(*MIX, strict=True)
        kind = rng.choices(kinds, weights)[0]
        if kind != "agency submit" and not self.ids:
            return "agency submit"
        if kind == "staff move" and not self.in_enquiry:
            return "staff detail"
        return kind

    def one(self, rng: random.Random) -> None:
        kind = self._pick(rng)
        started = time.perf_counter()
        try:
            ok = self._do(kind, rng)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            ok = f"{type(exc).__name__}"
        elapsed = time.perf_counter() - started
        with self.lock:
            self.latency[kind].append(elapsed)
            if ok is not True:
                self.errors[f"{kind}: {ok}"] += 1

    def _do(self, kind: str, rng: random.Random) -> bool | str:
        if kind == "agency submit":
            body = _payload()
            headers = {**self.agency, "Idempotency-Key": uuid.uuid4().hex}
            status, answer = self._call("POST", "/api/v1/referrals", headers, body)
            if status == 201:
                with self.lock:
                    self.ids.append(answer["id"])
                    self.in_enquiry.append(answer["id"])
            return status == 201 or f"HTTP {status}"
        if kind == "staff move":
            with self.lock:
                referral = self.in_enquiry.pop(rng.randrange(len(self.in_enquiry)))
            headers = {**self.staff, "Idempotency-Key": uuid.uuid4().hex}
            path = f"/api/v1/referrals/{referral}/transitions"
            status, _ = self._call("POST", path, headers, {"to": "awaiting_mri"})
            return status == 201 or f"HTTP {status}"
        who = self.agency if kind.startswith("agency") else self.staff
        if kind.endswith("list"):
            path = "/api/v1/referrals?limit=25"
        else:
            with self.lock:
                path = f"/api/v1/referrals/{rng.choice(self.ids)}"
        status, _ = self._call("GET", path, who)
        return status == 200 or f"HTTP {status}"

    def run(self, threads: int, seconds: float) -> None:
        end = time.monotonic() + seconds

        def loop(seed: int) -> None:
            rng = random.Random(seed)
            while time.monotonic() < end:
                self._slot()
                self.one(rng)

        workers = [threading.Thread(target=loop, args=(n,)) for n in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()


_counter = iter(range(10**9))


def _payload() -> dict:
    n = next(_counter)
    return {
        "procedure": "microdiscectomy",
        "agency_reference": f"SOAK-{uuid.uuid4().hex[:10]}",
        "patient": {
            "given_name": "Jonas",
            "family_name": f"Soak{n}",
            "date_of_birth": "1980-04-02",
            "sex": "male",
            "country": "DE",
            "phone": f"+49151{random.randrange(10**7, 10**8)}",
            "email": f"soak{n}@patient.example",
            "language": "de",
            "time_zone": "Europe/Berlin",
            "consents": {"sms": True, "email": True, "source": "signed intake form"},
        },
        "intake": {
            "complaints": ["severe_persistent_low_back_pain"],
            "symptom_duration_weeks": 16,
            "treatments_tried": [{"treatment": "physical_therapy", "duration_weeks": 8}],
            "pain_score": 7,
        },
    }


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def _memory(label: str, pids: dict[str, int]) -> dict[str, float]:
    found = {}
    for name, pid in pids.items():
        with suppress(OSError):
            found[name] = _rss_mb(pid)
    print(f"  RSS {label}: " + ", ".join(f"{n} {mb:.1f} MB" for n, mb in found.items()))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers")
    parser.add_argument("--rate", type=float, default=20.0, help="requests a second, all kinds")
    parser.add_argument("--threads", type=int, default=8, help="client threads")
    args = parser.parse_args(argv)

    base_url = os.environ.get("CRM_BENCH_DATABASE_URL", DEFAULT_URL)
    name = f"{base_url.rsplit('/', 1)[1]}_soak_{uuid.uuid4().hex[:6]}"
    admin = base_url.replace("postgresql+psycopg://", "postgresql://").rsplit("/", 1)[0]
    admin += "/postgres"
    url = f"{base_url.rsplit('/', 1)[0]}/{name}"
    redis = _redis_answers()
    load = os.getloadavg()
    print(
        f"soak: {args.minutes:g} min, {args.workers} workers + 1 scheduler, {args.rate:g} req/s "
        f"from {args.threads} threads; {os.cpu_count()} CPUs, load average "
        f"{load[0]:.1f} at start; rate limits in {'Redis' if redis else 'memory'}"
    )
    with ExitStack() as stack:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')

        def _drop() -> None:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

        stack.callback(_drop)
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="crm-soak-")))
        fake = stack.enter_context(running_fake_twilio())
        env = _env(url, tmp, fake, redis)
        _flask(env, "db", "upgrade")
        _flask(env, "crm", "load-catalogue")
        _flask(env, "crm", "load-nudge-rules")
        key = _flask(env, "crm", "create-agency", "Soak Agency", "--country", "DE")
        _flask(
            env,
            "crm",
            "create-staff",
            "soak@hospital.example",
            "--name",
            "Soak",
            "--role",
            "coordinator",
        )
        port = free_port()
        log = (tmp / "server.log").open("wb")
        web = subprocess.Popen(
            [
                str(BIN / "gunicorn"),
                *("--config", "config/gunicorn.conf.py", "--workers", str(args.workers)),
                *("--bind", f"127.0.0.1:{port}", "wsgi:app"),
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        stack.callback(lambda: (web.terminate(), web.wait(timeout=30)))
        scheduler = subprocess.Popen(
            [sys.executable, "-m", "crm.scheduler", *SCHEDULER_ARGS],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        stack.callback(lambda: (scheduler.terminate(), scheduler.wait(timeout=30)))
        return _drive(args, port, key, env, web, scheduler, fake, url, tmp)
    return 1


def _drive(args, port, key, env, web, scheduler, fake, url, tmp) -> int:
    token = _flask(env, "crm", "create-token", "soak@hospital.example")
    deadline = time.monotonic() + 60
    while len(_children(web.pid)) < args.workers or not _answers(port):
        if time.monotonic() > deadline:
            print((tmp / "server.log").read_text()[-3000:])
            return 1
        time.sleep(0.3)
    client = Client(port, key, token, args.rate)
    client.run(args.threads, WARMUP)
    pids = {f"worker {i + 1}": pid for i, pid in enumerate(_children(web.pid))}
    pids["scheduler"] = scheduler.pid
    before = _memory("after the warm-up", pids)
    client.latency.clear()
    started = time.monotonic()
    client.run(args.threads, args.minutes * 60)
    wall = time.monotonic() - started
    after = _memory("at the end", pids)
    time.sleep(3)  # the scheduler's last tick
    return _report(client, wall, before, after, fake, url, web, pids)


def _answers(port: int) -> bool:
    with suppress(OSError, http.client.HTTPException):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/readyz")
        return conn.getresponse().status == 200
    return False


def _report(client, wall, before, after, fake, url, web, pids) -> int:
    everything = [x for values in client.latency.values() for x in values]
    errors = sum(client.errors.values())
    print(
        f"requests: {len(everything)} in {wall:.0f} s ({len(everything) / wall:.1f}/s), "
        f"errors {errors} (goal 0)"
    )
    for kind, values in sorted(client.latency.items()):
        print(
            f"  {kind:14} {len(values):6}  p50 {_pct(values, 0.5):7.1f} ms"
            f"  p95 {_pct(values, 0.95):7.1f} ms"
        )
    print(
        f"  {'all':14} {len(everything):6}  p50 {_pct(everything, 0.5):7.1f} ms  p95 "
        f"{_pct(everything, 0.95):7.1f} ms  mean {statistics.fmean(everything) * 1000:.1f} ms"
    )
    for reason, count in client.errors.most_common(10):
        print(f"  error x{count}: {reason}")
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        outbox = dict(conn.execute("SELECT status, count(*) FROM outbox_messages GROUP BY 1"))
    bodies = Counter((p.form.get("To"), p.form.get("Body")) for p in fake.posts())
    twice = sum(1 for n in bodies.values() if n > 1)
    print(f"dispatcher: outbox {outbox}; SMS at the fake provider {len(bodies)}, twice {twice}")
    growth = {n: after[n] - before[n] for n in before if n in after}
    workers = sorted(p for n, p in pids.items() if "worker" in n)
    restarted = sorted(_children(web.pid)) != workers
    print(
        "RSS growth: "
        + ", ".join(f"{n} {mb:+.1f} MB" for n, mb in growth.items())
        + f" (goal < {RSS_GOAL_MB:g} MB each); workers restarted: "
        + ("yes" if restarted else "no")
    )
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    flat = all(mb < RSS_GOAL_MB for mb in growth.values())
    return 0 if errors == 0 and flat and twice == 0 and not restarted else 1


if __name__ == "__main__":
    raise SystemExit(main())

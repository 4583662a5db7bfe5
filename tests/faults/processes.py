"""The app's real processes for the fault tests: gunicorn (its master and sync workers)
and `python -m crm.scheduler`, each in its own session, stopped by their own ids."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.faults.cluster import free_port

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def app_env(database_url: str, tmp: Path, **settings: str) -> dict[str, str]:
    """The environment of a production-like process: no inherited CRM_* setting."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.update(
        CRM_DATABASE_URL=database_url,
        CRM_ENV="development",  # production also wants Redis for the rate limits
        CRM_SECRET_KEY="faults-test-secret-key-that-is-long-enough-to-pass",
        CRM_LOG_LEVEL="WARNING",
        CRM_OUTBOX_FILE_DIR=str(tmp / "outbox"),
        CRM_DOCUMENTS_DIR=str(tmp / "documents"),
        CRM_RATE_LIMIT_PER_KEY="100000 per minute",
        CRM_RATE_LIMIT_PER_AGENCY="100000 per minute",
        CRM_QUIET_HOURS="00:00-00:00",
    )
    env.update({f"CRM_{k}": v for k, v in settings.items()})
    return env


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: Any


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw.decode(errors="replace")


def request(
    port: int,
    method: str,
    path: str,
    body: bytes | Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 30,
) -> Answer:
    sent = dict(headers or {})
    if isinstance(body, Mapping):
        body = json.dumps(body).encode()
        sent.setdefault("Content-Type", "application/json")
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=sent)
        response = connection.getresponse()
        return Answer(response.status, dict(response.getheaders()), _decode(response.read()))
    finally:
        connection.close()


def children(pid: int) -> list[int]:
    """The live child processes of `pid` (from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry))
    return found


@dataclass
class Gunicorn:
    env: dict[str, str]
    log: Path
    workers: int = 1
    options: tuple[str, ...] = ()  # more command-line options, after (over) the defaults
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    def start(self) -> Gunicorn:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [
                    str(BIN / "gunicorn"),
                    *("--config", "config/gunicorn.conf.py", "--workers", str(self.workers)),
                    *("--bind", f"127.0.0.1:{self.port}", "--timeout", "120"),
                    *("--graceful-timeout", "5", *self.options, "wsgi:app"),
                ],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.wait_serving()
        return self

    def wait_serving(self, within: float = 60) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            assert self.process is not None and self.process.poll() is None, self.tail()
            try:
                up = request(self.port, "GET", "/healthz", timeout=5).status == 200
                if up and len(self.worker_pids()) == self.workers:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"gunicorn did not serve within {within}s:\n{self.tail()}")

    def worker_pids(self) -> list[int]:
        assert self.process is not None
        return children(self.process.pid)

    def request(self, method: str, path: str, **kwargs: Any) -> Answer:
        return request(self.port, method, path, **kwargs)

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def scheduler(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "crm.scheduler", *args],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def kill9(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)

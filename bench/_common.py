"""What the benchmark scripts beside this file share: where the project is, the scratch
databases on the server of CRM_BENCH_DATABASE_URL, the child processes a run starts, and
the environment those get. Not a benchmark itself; the scripts import it by name (each
runs as `python bench/<script>.py`, so this folder is on the path).
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/crm_bench"
HOST = "127.0.0.1"
PIPELINE = (
    "enquiry",
    "awaiting_mri",
    "mri_review",
    "plan_offered",
    "plan_accepted",
    "travel_booked",
    "in_treatment",
    "post_op",
    "follow_up",
    "completed",
)


def bin_path(name: str) -> str:
    """A command of the project's virtualenv (else beside this Python)."""
    venv = ROOT / ".venv" / "bin" / name
    return str(venv if venv.exists() else Path(sys.executable).parent / name)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def run_flask(env: dict[str, str], *args: str) -> str:
    """Run `flask --app wsgi ...` in the project; its stdout, or a clear failure."""
    result = subprocess.run(
        [bin_path("flask"), "--app", "wsgi", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"flask {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def clean_env(**crm: str) -> dict[str, str]:
    """The environment without inherited CRM_* settings, plus `crm` as CRM_* variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
    env.update({f"CRM_{name}": value for name, value in crm.items()})
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


@dataclass
class Databases:
    """Scratch databases on the server of CRM_BENCH_DATABASE_URL; dropped by `drop_all`.

    `prefix` starts every name a script gives them: the URL's database name, or with a
    `tag` that name (shortened), the tag and a random suffix: a run of its own."""

    url: str
    tag: str | None = None
    created: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._parsed = make_url(self.url)
        base = self._parsed.database or "crm_bench"
        self.prefix = f"{base[:30]}_{self.tag}_{secrets.token_hex(3)}" if self.tag else base[:40]

    def sqlalchemy_url(self, name: str) -> str:
        return self._parsed.set(database=name).render_as_string(hide_password=False)

    def libpq_url(self, name: str) -> str:
        return self._parsed.set(drivername="postgresql", database=name).render_as_string(
            hide_password=False
        )

    def connect(self, name: str, **kwargs) -> psycopg.Connection:
        return psycopg.connect(self.libpq_url(name), **kwargs)

    def create(self, name: str, template: str | None = None) -> str:
        if name in {"test", "postgres", "template0", "template1"}:
            raise ValueError(f"refusing to create or drop {name!r}")
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            statement = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        with self.connect("postgres", autocommit=True) as admin:
            admin.execute(statement)
        self.created.append(name)
        return name

    def drop_all(self) -> None:
        if not self.created:
            return
        with self.connect("postgres", autocommit=True) as admin:
            for name in reversed(self.created):
                admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
        self.created.clear()


class Processes:
    """Every child process a benchmark starts; `stop_all` ends them, by pid."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen] = []

    def start(self, args: list[str], **kwargs) -> subprocess.Popen:
        process = subprocess.Popen(args, cwd=ROOT, **kwargs)
        self.started.append(process)
        return process

    def stop_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                with suppress(ProcessLookupError):
                    process.terminate()
        for process in self.started:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):
                    process.kill()
                process.wait(timeout=5)
        self.started.clear()

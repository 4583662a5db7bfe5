"""Small helpers the fault tests share: direct reads of the scratch database, a referral
submitted through the API, a multipart body."""

from __future__ import annotations

import time
import uuid
from typing import Any

import psycopg

from tests.factories import Caller, referral_payload
from tests.faults.processes import Gunicorn

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def scalar(url: str, sql: str, *params: Any) -> Any:
    with psycopg.connect(plain(url)) as conn:
        return conn.execute(sql, params).fetchone()[0]


def submit(web: Gunicorn, agency: Caller, **overrides: Any) -> dict[str, Any]:
    answer = web.request(
        "POST",
        "/api/v1/referrals",
        body=referral_payload(**overrides),
        headers=agency.headers(**{"Idempotency-Key": uuid.uuid4().hex}),
    )
    assert answer.status == 201, answer.body
    return answer.body


def multipart(fields: dict[str, str], filename: str, content: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n".encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def stuck_backend(conn: psycopg.Connection, within: float = 30) -> int:
    """The pid of the app's backend waiting on a lock with writes of its own (an xid)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        row = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND wait_event_type = 'Lock' "
            "AND backend_xid IS NOT NULL"
        ).fetchone()
        if row:
            return row[0]
        time.sleep(0.05)
    raise AssertionError("no backend of the app ever waited on the test's lock")


def gone(url: str, pid: int, within: float = 30) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not scalar(url, "SELECT count(*) FROM pg_stat_activity WHERE pid = %s", pid):
            return True
        time.sleep(0.05)
    return False

"""Small helpers the fault tests share: direct reads of the scratch database, a referral
submitted through the API, a multipart body."""

from __future__ import annotations

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

"""`Idempotency-Key` for POST: a retry replays the first response instead of acting twice.

The key row is inserted in the same transaction as the work it guards and completed with
the response before that transaction commits, so a key is either absent (the request
failed or never ran: a retry runs it) or bound to exactly one committed response.
A second request arriving while the first is still running is told 409 at once: on
PostgreSQL each request holds a transaction-scoped advisory lock on its key (SQLite
serialises writers, so there the second simply waits and then replays).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import wraps
from typing import Any

from flask import Response, current_app, request
from sqlalchemy import String, Text, UniqueConstraint, func, literal, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, mapped_column

from crm.core.db import utcnow
from crm.core.errors import IdempotencyMismatch, RequestInFlight, ValidationFailed
from crm.extensions import db

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
_KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,255}$")
_REPLAYED_RESPONSE_HEADERS = ("Location", "Content-Type")


class IdempotencyKey(db.Model):
    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("scope", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    response_status: Mapped[int | None]
    response_body: Mapped[str | None] = mapped_column(Text)
    response_headers: Mapped[str | None] = mapped_column(Text)


def fingerprint_request() -> str:
    digest = hashlib.sha256()
    for part in (request.method.encode(), request.full_path.encode(), _canonical_body()):
        digest.update(part + b"\0")
    return digest.hexdigest()


def _canonical_body() -> bytes:
    """JSON canonically; a multipart form by its fields and each file's SHA-256, so an
    upload of hundreds of MB is streamed to disk by the form parser, never read into memory
    here (`get_data` would hold the whole body)."""
    if request.mimetype == "multipart/form-data":
        return _form_digest()
    body = request.get_data(cache=True)
    try:
        return json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        return body


def _form_digest() -> bytes:
    digest = hashlib.sha256()
    for name, value in sorted(request.form.items(multi=True)):
        digest.update(f"field\0{name}\0{value}\0".encode())
    for name, upload in sorted(request.files.items(multi=True), key=lambda item: item[0]):
        digest.update(f"file\0{name}\0{upload.filename}\0".encode())
        digest.update(_stream_sha256(upload.stream).encode() + b"\0")
    return digest.digest()


def _stream_sha256(stream: Any) -> str:
    """A stream that hashed itself while written says so; any other is read in chunks."""
    if isinstance(known := getattr(stream, "sha256", None), str):
        return known
    digest = hashlib.sha256()
    while chunk := stream.read(2**20):
        digest.update(chunk)
    stream.seek(0)
    return digest.hexdigest()


def _hold_key(scope: str, key: str) -> None:
    """PostgreSQL: take this key's transaction-scoped advisory lock, or say 409 at once.

    Whoever holds it is running a request with this key right now; it is released when
    that transaction commits or rolls back, so a later retry finds the stored response.
    """
    if db.session.get_bind().dialect.name != "postgresql":
        return  # SQLite serialises writers: a second request waits, then replays
    lock_id = func.hashtextextended(f"{scope}|{key}", 0)  # scope never contains "|"
    if not db.session.scalar(select(func.pg_try_advisory_xact_lock(lock_id))):
        raise RequestInFlight("The first request with this key has not finished.")


def _insert(values: dict[str, Any]) -> IdempotencyKey | None:
    dialect = db.session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = (
        insert(IdempotencyKey)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["scope", "key"])
        .returning(IdempotencyKey)
    )
    return db.session.scalars(statement).one_or_none()


def _lock_and_insert(values: dict[str, Any]) -> IdempotencyKey | None:
    """PostgreSQL, the common case in one round trip: take the key's advisory lock and
    insert its row in the same statement (the row only if the lock was taken). None when
    either did not happen; `claim` then finds out which, with the slower steps."""
    table = IdempotencyKey.__table__
    lock_id = func.hashtextextended(f"{values['scope']}|{values['key']}", 0)
    held = select(func.pg_try_advisory_xact_lock(lock_id).label("held")).cte("held")
    names = list(values)
    rows = select(*[literal(values[n], type_=table.c[n].type) for n in names]).where(held.c.held)
    statement = (
        pg_insert(IdempotencyKey)
        .from_select(names, rows)
        .on_conflict_do_nothing(index_elements=["scope", "key"])
        .returning(IdempotencyKey)
    )
    return db.session.scalars(statement).one_or_none()


def claim(scope: str, key: str, fingerprint: str) -> IdempotencyKey:
    """This request's key row: new (run the request) or completed (replay it)."""
    now = utcnow()
    ttl = timedelta(hours=current_app.config["CRM"]["IDEMPOTENCY_TTL_HOURS"])
    values = {"scope": scope, "key": key, "fingerprint": fingerprint, "expires_at": now + ttl}
    if db.session.get_bind().dialect.name == "postgresql":
        record = _lock_and_insert({**values, "created_at": now})
        if record is not None:
            return record
    _hold_key(scope, key)  # taken already (advisory locks nest) or 409: another is running
    record = _insert({**values, "created_at": now})
    if record is not None:
        return record
    existing = db.session.scalars(
        select(IdempotencyKey).where(IdempotencyKey.scope == scope, IdempotencyKey.key == key)
    ).one()
    if existing.expires_at > now:
        if existing.fingerprint != fingerprint:
            raise IdempotencyMismatch(
                "This Idempotency-Key was first used with a different request; "
                "use a new key for a new request."
            )
        return existing
    db.session.delete(existing)
    db.session.flush()
    return _insert({**values, "created_at": now})


def _replay(record: IdempotencyKey) -> Response:
    headers = json.loads(record.response_headers or "{}")
    response = Response(record.response_body, status=record.response_status, headers=headers)
    response.headers[REPLAYED_HEADER] = "true"
    return response


def _remember(
    record: IdempotencyKey, response: Response, stored_body: Callable[[str], str] | None = None
) -> None:
    record.response_status = response.status_code
    body = response.get_data(as_text=True)
    record.response_body = stored_body(body) if stored_body else body
    record.response_headers = json.dumps(
        {
            name: response.headers[name]
            for name in _REPLAYED_RESPONSE_HEADERS
            if name in response.headers
        }
    )
    db.session.flush()


def idempotent(
    scope_of: Callable[[], str], *, stored_body: Callable[[str], str] | None = None
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a POST view: `scope_of()` names the caller the key belongs to.

    `stored_body` rewrites the response body before it is kept for replays: a response
    that carries a secret shown once keeps it out of the database (a replay then says the
    secret is not shown again)."""

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            key = request.headers.get(HEADER)
            if key is None:
                return view(*args, **kwargs)
            if not _KEY_PATTERN.match(key):
                raise ValidationFailed(
                    {f"header.{HEADER}": "1 to 255 visible ASCII characters, no spaces"}
                )
            record = claim(scope_of(), key, fingerprint_request())
            if record.response_status is not None:
                return _replay(record)
            response = current_app.make_response(view(*args, **kwargs))
            if response.status_code < 400:
                _remember(record, response, stored_body)
            return response

        wrapper.__dict__.setdefault("_apidoc", {}).setdefault("manual_doc", {}).setdefault(
            "parameters", []
        ).append(
            {
                "in": "header",
                "name": HEADER,
                "required": False,
                "schema": {"type": "string", "maxLength": 255},
                "description": "Retry-safe key: the same key and body replays the first "
                "response; the same key with another body is 422; while the first is "
                "running, 409. Keys are per caller and expire.",
            }
        )
        return wrapper

    return decorator


def purge_expired(now: datetime | None = None) -> int:
    result = db.session.execute(
        IdempotencyKey.__table__.delete().where(IdempotencyKey.expires_at <= (now or utcnow()))
    )
    return result.rowcount or 0

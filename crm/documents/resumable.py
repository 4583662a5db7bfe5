"""Resumable uploads: the verbs behind every door's tus endpoints (API, agency panel,
patient page). Who may use an upload is each door's business (it finds the referral the
way its one-shot upload does); these functions take the upload from there:

- `start`: a row in `upload_sessions` and an empty part, for a referral the caller may
  add to, with the kind, the file's name, its length and the SHA-256 it declares;
- `receive`: a PATCH's body appended at the offset the client names (any other offset is
  409), read in large reads, hashed as written (`parts`);
- `finish`: once the last byte is in, the SHA-256 of what arrived must be the declared one;
  the part then goes through `operations.store_document`, exactly as a one-shot upload
  (limits, sniffing, ZIP checks, DICOM metadata, encryption, deduplication, audit, the
  pipeline move). A refusal is kept on the row (`refused`, why) and the part removed;
- `terminate`: the client gives up (DELETE): the part and the row go.

Abandoned uploads (no byte for `CRM_UPLOAD_EXPIRY_HOURS`) are removed by the scheduler
(`jobs.sweep_abandoned_uploads`).
"""

from __future__ import annotations

import re
import secrets
from datetime import timedelta
from pathlib import Path
from typing import IO

from flask import current_app

from crm.core.actors import Actor
from crm.core.db import utcnow
from crm.core.errors import Conflict, DomainError, NotFound, ValidationFailed
from crm.core.http import commit_before_a_long_body, keep_when_refused
from crm.documents import operations, parts
from crm.documents.models import DOCUMENT_KINDS, Document, UploadSession
from crm.documents.upload import FileTooLarge, storage
from crm.extensions import db
from crm.referrals.models import Referral

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_ID = re.compile(r"^[0-9a-f]{32}$")


class OffsetMismatch(Conflict):
    code, title = "upload-offset-mismatch", "The upload is not at that offset"


class UploadClosed(Conflict):
    code, title = "upload-closed", "The upload is no longer open"


class HashMismatch(DomainError):
    status, code, title = 422, "upload-hash-mismatch", "The file is not the one declared"


class UploadIncomplete(Conflict):
    code, title = "upload-incomplete", "Bytes are missing"


def parts_dir() -> Path:
    return storage().tmp / "parts"


def part_path(upload: UploadSession) -> Path:
    return parts_dir() / f"{upload.id}.part"


def expiry() -> timedelta:
    return timedelta(hours=current_app.config["CRM"]["UPLOAD_EXPIRY_HOURS"])


def start(
    referral: Referral, actor: Actor, kind: str, filename: str, length: int, sha256: str
) -> UploadSession:
    """A new upload of `length` bytes for `referral`; nothing arrives yet."""
    problems = {}
    if kind not in DOCUMENT_KINDS:
        problems["kind"] = f"one of {', '.join(DOCUMENT_KINDS)}"
    if not _SHA256.match(sha256 or ""):
        problems["sha256"] = "the file's SHA-256, 64 lowercase hex digits"
    if length <= 0:
        problems["length"] = "the file's size in bytes, at least 1"
    if problems:
        raise ValidationFailed(problems)
    if length > operations.max_bytes(kind):
        raise FileTooLarge(
            f"file: {kind} may be at most {operations.max_bytes(kind) // 2**20} MB", field="file"
        )
    now = utcnow()
    upload = UploadSession(
        id=secrets.token_hex(16),
        referral_id=referral.id,
        kind=kind,
        filename=operations.clean_filename(filename),
        length=length,
        received=0,
        sha256=sha256,
        status="open",
        owner_type=actor.kind,
        owner_id=actor.id,
        owner_label=actor.label,
        created_at=now,
        updated_at=now,
        expires_at=now + expiry(),
    )
    db.session.add(upload)
    db.session.flush()
    store = storage()
    parts.SealedPart.create(part_path(upload), store.keyring, store.chunk_size)
    return upload


def find(upload_id: str, actor: Actor, referral_id: int | None = None) -> UploadSession:
    """The upload if `actor` started it (and, if named, for that referral); 404 otherwise,
    whoever else asks: another caller's upload does not exist for them."""
    upload = db.session.get(UploadSession, upload_id) if _ID.match(upload_id) else None
    if (
        upload is None
        or (upload.owner_type, upload.owner_id) != (actor.kind, actor.id)
        or (referral_id is not None and upload.referral_id != referral_id)
    ):
        raise NotFound(f"no upload {upload_id}")
    return upload


def _part(upload: UploadSession) -> parts.SealedPart:
    return parts.SealedPart.open(part_path(upload), upload.length, storage().keyring)


def offset_of(upload: UploadSession) -> int:
    """How many bytes the upload has: what its part holds while it is open."""
    if upload.status != "open":
        return upload.received
    try:
        return _part(upload).offset()
    except FileNotFoundError:
        return 0


def receive(upload: UploadSession, offset: int, body: IO[bytes], count: int) -> int:
    """Append `count` bytes of `body` at `offset`; returns the new offset. The database
    transaction is ended first (what the request read to authorise it is committed), so
    no transaction stays open while a slow client sends."""
    if upload.status != "open":
        raise UploadClosed(f"upload {upload.id} is {upload.status}")
    path, upload_id, length = part_path(upload), upload.id, upload.length
    if count > length - offset:
        raise ValidationFailed({"Content-Length": "more bytes than the upload has left"})
    keyring = storage().keyring
    commit_before_a_long_body()
    try:
        with parts.locked(path) as fd:
            part = parts.SealedPart.open(path, length, keyring)
            parts.cut_torn_write(part, fd)
            current = part.offset()
            if offset != current:
                raise OffsetMismatch(
                    f"the upload has {current} bytes; send from Upload-Offset: {current}",
                    offset=current,
                )
            digests = part.running(upload_id)
            try:
                part.append(fd, body, count, digests)
            finally:
                part.remember(upload_id, digests)
    except FileNotFoundError as exc:  # swept or terminated meanwhile
        raise UploadClosed(f"upload {upload_id} is gone") from exc
    new_offset = digests.offset
    upload.received = new_offset
    upload.updated_at = utcnow()
    upload.expires_at = upload.updated_at + expiry()
    db.session.flush()
    return new_offset


def finish(upload: UploadSession, referral: Referral, actor: Actor) -> Document:
    """The complete part, checked against its declared hash, stored as a document. The
    caller has locked the referral; the upload's row is locked too, so two requests that
    both brought the last byte (a retry) store it once."""
    db.session.refresh(upload, with_for_update=True)
    if upload.status != "open":
        raise UploadClosed(f"upload {upload.id} is {upload.status}")
    try:
        part = _part(upload)
    except FileNotFoundError as exc:
        raise UploadClosed(f"upload {upload.id} is gone") from exc
    size = part.offset()
    if size != upload.length:
        raise UploadIncomplete(f"the upload has {size} of {upload.length} bytes")
    digests = part.digests(upload.id)
    parts.forget(upload.id)
    try:
        if digests.sent_sha256() != upload.sha256:
            raise HashMismatch(
                f"file: the bytes received hash to {digests.sent_sha256()}, not the declared "
                f"{upload.sha256}; start the upload again",
                field="file",
            )
        document = operations.store_sealed(
            referral, upload.kind, upload.filename, part, digests.stored_sha256(), actor
        )
    except DomainError as exc:
        _refuse(upload.id, part, exc)
        raise
    upload.status, upload.received, upload.document_id = "complete", size, document.id
    upload.updated_at = utcnow()
    db.session.flush()
    return document


def _refuse(upload_id: str, part: parts.SealedPart, exc: DomainError) -> None:
    """The refusal outlasts the request: the work rolled back, the row says why."""
    part.remove()
    db.session.rollback()
    upload = db.session.get(UploadSession, upload_id)
    if upload is not None:
        upload.status, upload.refusal = "refused", exc.detail[:2000]
        upload.updated_at = utcnow()
        db.session.flush()
        keep_when_refused()


def terminate(upload: UploadSession) -> None:
    """The client gives the upload up: its part and its row are removed."""
    if upload.status == "complete":
        raise UploadClosed(f"upload {upload.id} is complete: delete the document instead")
    remove_part(upload.id)
    db.session.delete(upload)
    db.session.flush()


def remove_part(upload_id: str) -> None:
    """An upload's part and the files beside it, whatever state they are in."""
    base = parts_dir() / f"{upload_id}.part"
    for path in (base, base.with_suffix(".tail"), base.with_suffix(".head")):
        path.unlink(missing_ok=True)
    parts.forget(upload_id)

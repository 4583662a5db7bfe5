"""What the scheduler runs for documents: removing stored files no document references.

The store keeps a file before the request's transaction commits (the bytes must be on disk
before a row may point at them), so a request that rolls back after that leaves a blob
behind, as does a worker killed mid-upload with its temp file. The sweep removes both once
they are older than a grace period, which spares every upload still in flight.

An upload of content already stored touches the file (`LocalStorage.keep`), so a blob an
in-flight upload is about to reference is fresh, never old. The sweep moves an old,
unreferenced blob aside first and looks at its age again: an upload that touched it in
between gets it back, and one arriving after the move finds no file and stores its own
copy. Content addressing makes any copy under a name identical, so nothing is mixed up.

On S3 (`storage_s3`) there is no rename: the sweep lists the objects, and removes one that
is unreferenced and whose LastModified (renewed by an upload reusing it) is still older
than the grace when looked at again just before the delete; it also aborts multipart
uploads a killed worker left open. Temp files are on the local disk with either backend.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import suppress
from datetime import datetime, timedelta
from itertools import islice
from pathlib import Path

from flask import current_app
from sqlalchemy import delete, select, update

from crm.core.db import utcnow
from crm.documents import resumable
from crm.documents.encryption import DocumentUnreadable, Sealed
from crm.documents.models import Document, UploadSession
from crm.documents.storage import EncryptedStore, LocalStorage, current_storage
from crm.documents.storage_s3 import S3Storage
from crm.extensions import db

log = logging.getLogger(__name__)

_HEX = frozenset("0123456789abcdef")
_ASIDE = ".sweep"
_BATCH = 500


def sweep_orphan_blobs(store: EncryptedStore, grace: timedelta, now: datetime | None = None) -> int:
    """Remove blobs no `documents` row references and temp files, both older than `grace`;
    returns how many files were removed."""
    if isinstance(store, S3Storage):
        return _sweep_s3(store, (now or utcnow()) - grace)
    assert isinstance(store, LocalStorage)
    cutoff = ((now or utcnow()) - grace).timestamp()
    _restore_set_aside(store)
    removed = 0
    candidates = (path for path in _blobs(store) if _mtime(path) < cutoff)
    while batch := list(islice(candidates, _BATCH)):
        referenced = set(
            db.session.scalars(
                select(Document.sha256).where(Document.sha256.in_([p.name for p in batch]))
            )
        )
        db.session.commit()  # a read: hold no transaction while touching the disk
        removed += sum(_remove_if_still_old(p, cutoff) for p in batch if p.name not in referenced)
    removed += _remove_old_temps(store, cutoff)
    if removed:
        log.info("document sweep", extra={"removed": removed})
    return removed


def _sweep_s3(store: S3Storage, cutoff: datetime) -> int:
    removed = 0
    candidates = (sha for sha, modified in store.blobs() if modified < cutoff)
    while batch := list(islice(candidates, _BATCH)):
        referenced = set(
            db.session.scalars(select(Document.sha256).where(Document.sha256.in_(batch)))
        )
        db.session.commit()  # a read: hold no transaction while talking to the store
        for sha in batch:
            if sha in referenced:
                continue
            modified = store.last_modified(sha)
            if modified is not None and modified < cutoff:  # not reused since it was listed
                store.delete(sha)
                removed += 1
    store.abort_stale_uploads(cutoff)
    removed += _remove_old_temps(store, cutoff.timestamp())
    if removed:
        log.info("document sweep", extra={"removed": removed})
    return removed


def _blobs(store: LocalStorage) -> Iterator[Path]:
    for path in store.root.glob("??/??/*"):
        if len(path.name) == 64 and set(path.name) <= _HEX and path.is_file():
            yield path


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return float("inf")  # gone already: nothing to do


def _remove_if_still_old(path: Path, cutoff: float) -> bool:
    aside = path.with_name(path.name + _ASIDE)
    try:
        os.replace(path, aside)  # from now on, an upload of this content writes a new copy
    except FileNotFoundError:
        return False
    if aside.stat().st_mtime >= cutoff:  # an upload touched it just before the move
        _put_back(aside, path)
        return False
    aside.unlink()
    return True


def _restore_set_aside(store: LocalStorage) -> None:
    """A sweep killed between its move and its check leaves `<sha>.sweep`: put it back and
    let this sweep judge it again."""
    for aside in store.root.glob(f"??/??/*{_ASIDE}"):
        _put_back(aside, aside.with_name(aside.name.removesuffix(_ASIDE)))


def _put_back(aside: Path, original: Path) -> None:
    """Never over a copy an upload stored meanwhile: that copy has its own data key, which
    its document row names (a link fails where a rename would replace it)."""
    with suppress(FileExistsError):
        os.link(aside, original)
    aside.unlink(missing_ok=True)


def _remove_old_temps(store: EncryptedStore, cutoff: float) -> int:
    if not store.tmp.is_dir():
        return 0
    removed = 0
    for temp in store.tmp.glob("upload-*"):
        if _mtime(temp) < cutoff:
            temp.unlink(missing_ok=True)
            removed += 1
    return removed


def sweep_orphans() -> int:
    """The scheduled job: the sweep over this app's store with its configured grace."""
    settings = current_app.config["CRM"]
    store = current_storage()
    return sweep_orphan_blobs(store, timedelta(hours=settings["DOCUMENT_ORPHAN_GRACE_HOURS"]))


# Key rotation and legacy files: `flask crm documents rewrap` and `... encrypt-legacy`.
#
# Rewrapping unwraps each document's data key with the master key it names and wraps it
# under the active one: only the `documents` rows change, never the stored content, so it
# is quick whatever the volume. Once it reports nothing left under an old key, that key
# can be removed from CRM_DOCUMENTS_MASTER_KEYS. (A blob's header keeps the copy wrapped
# when it was written; it is used only to recognise the blob's key on a later upload of the
# same content, and is useless without the retired master key.)
#
# Files stored before encryption at rest (rows with no key) stay readable as they are;
# `encrypt-legacy` encrypts each such file in place under a new data key and records it on
# every row of that content, one file per transaction.


def rewrap_all() -> int:
    """Every data key not under the active master key re-wrapped under it; returns how many
    rows changed. Commits per batch."""
    keyring, changed, last_id = current_storage().keyring, 0, 0
    while True:
        rows = db.session.scalars(
            select(Document)
            .where(Document.key_id.is_not(None), Document.key_id != keyring.active_id)
            .where(Document.id > last_id)
            .order_by(Document.id)
            .limit(_BATCH)
        ).all()
        if not rows:
            return changed
        for document in rows:
            document.key_id, document.wrapped_key = keyring.rewrap(document.sealed)
            changed += 1
        last_id = rows[-1].id
        db.session.commit()


def encrypt_legacy() -> tuple[int, list[str]]:
    """Every file stored in plaintext, encrypted in place; returns how many files, and the
    hashes of those that could not be (missing, or not matching their hash), left as
    they are."""
    store, done, failed = current_storage(), 0, []
    while sha := db.session.scalar(
        select(Document.sha256)
        .where(Document.key_id.is_(None), Document.sha256.not_in(failed))
        .order_by(Document.id)
        .limit(1)
    ):
        try:
            sealed: Sealed = store.encrypt_in_place(sha)
        except (FileNotFoundError, DocumentUnreadable) as exc:
            log.error("document not encrypted", extra={"sha256": sha, "error": str(exc)})
            failed.append(sha)
            db.session.rollback()
            continue
        db.session.execute(
            update(Document)
            .where(Document.sha256 == sha)
            .values(key_id=sealed.key_id, wrapped_key=sealed.wrapped)
        )
        db.session.commit()
        done += 1
    return done, failed


def sweep_abandoned_uploads(now: datetime | None = None) -> int:
    """Resumable uploads nobody added to for `CRM_UPLOAD_EXPIRY_HOURS`: their parts and rows
    removed (a finished or refused one's row too, once past the same time); and parts no
    row names (the row's transaction rolled back) once that old. Returns how many uploads
    (and stray parts) were removed; commits per batch."""
    now = now or utcnow()
    removed = 0
    while ids := db.session.scalars(
        select(UploadSession.id).where(UploadSession.expires_at < now).limit(_BATCH)
    ).all():
        for upload_id in ids:
            resumable.remove_part(upload_id)
        db.session.execute(delete(UploadSession).where(UploadSession.id.in_(ids)))
        db.session.commit()
        removed += len(ids)
    removed += _remove_stray_parts(now - resumable.expiry())
    if removed:
        log.info("upload sweep", extra={"removed": removed})
    return removed


def _remove_stray_parts(cutoff: datetime) -> int:
    folder = resumable.parts_dir()
    if not folder.is_dir():
        return 0
    old = [p for p in folder.glob("*.*") if _mtime(p) < cutoff.timestamp()]
    removed = 0
    for batch in (old[i : i + _BATCH] for i in range(0, len(old), _BATCH)):
        known = set(
            db.session.scalars(
                select(UploadSession.id).where(UploadSession.id.in_([p.stem for p in batch]))
            )
        )
        db.session.commit()
        for path in batch:
            if path.stem not in known:
                path.unlink(missing_ok=True)
                removed += 1
    return removed

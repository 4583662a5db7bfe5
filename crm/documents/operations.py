"""Accepting a document: decide its type by content, make it safe, store it, act on it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from uuid import uuid4

from flask import current_app
from sqlalchemy import select

from crm.auth.models import StaffUser
from crm.core import audit
from crm.core.actors import Actor
from crm.core.errors import DomainError, ValidationFailed
from crm.core.events import publish
from crm.documents import dicom
from crm.documents.encryption import Sealed
from crm.documents.events import DocumentAdded
from crm.documents.models import Document
from crm.documents.sniff import sniff
from crm.documents.storage import sha256_of
from crm.documents.upload import FileTooLarge, Received, storage
from crm.documents.zipcheck import UNREADABLE_ENTRY, ZipLimits, ZipRefused, check_dicom_zip
from crm.extensions import db
from crm.messaging.composing.outbox import enqueue
from crm.referrals.models import Referral
from crm.referrals.operations import move_to_stage
from crm.referrals.stages import Stage

if TYPE_CHECKING:
    from crm.documents.parts import SealedPart

# Which content each kind may be: an MRI study is imaging, a passport a scan or a PDF.
ALLOWED_CONTENT = {
    "mri_study": {"dicom", "dicom_zip"},
    "radiology_report": {"pdf", "jpeg", "png"},
    "passport": {"pdf", "jpeg", "png"},
    "medical_record": {"pdf", "jpeg", "png", "dicom", "dicom_zip"},
    "other": {"pdf", "jpeg", "png"},
}
MEDIA_TYPES = {
    "dicom": "application/dicom",
    "dicom_zip": "application/zip",
    "pdf": "application/pdf",
    "jpeg": "image/jpeg",
    "png": "image/png",
}
_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._ -]+")


class UnsupportedFile(DomainError):
    status, code, title = 415, "unsupported-file", "This kind of file is not accepted"


class UnreadableFile(UnsupportedFile):
    """A ZIP refused by its checks (damaged, a bomb, encrypted, hostile names, not DICOM
    inside) or a DICOM that cannot be read: the same 415 to the API, its own words on the
    patient's page."""


class EmptyFile(ValidationFailed):
    def __init__(self) -> None:
        super().__init__({"file": "the file is empty"})


def max_bytes(kind: str) -> int:
    settings = current_app.config["CRM"]
    megabytes = (
        settings["DOCUMENT_MAX_MB_MRI"]
        if kind in {"mri_study", "medical_record"}
        else (settings["DOCUMENT_MAX_MB_OTHER"])
    )
    return megabytes * 1024 * 1024


def _zip_limits() -> ZipLimits:
    settings = current_app.config["CRM"]
    return ZipLimits(
        max_entries=settings["ZIP_MAX_ENTRIES"],
        max_total_bytes=settings["ZIP_MAX_UNPACKED_MB"] * 1024 * 1024,
        max_ratio=settings["ZIP_MAX_RATIO"],
    )


def clean_filename(name: str | None) -> str:
    base = Path((name or "upload").replace("\\", "/")).name
    return (_UNSAFE_FILENAME.sub("_", base).strip(" .") or "upload")[:200]


def _refuse(reason: str, unreadable: bool = False) -> UnsupportedFile:
    refusal = UnreadableFile if unreadable else UnsupportedFile
    return refusal(f"file: {reason}", field="file")


def _inspect(received: Received, kind: str) -> tuple[str, Received, dict[str, Any]]:
    """(content type, the safe file to store, DICOM metadata); refuses what is not allowed."""
    found, clean, metadata = _examine(received.path, kind)
    return found, clean or received, metadata


def _examine(source: Path | IO[bytes], kind: str) -> tuple[str, Received | None, dict[str, Any]]:
    """(content type, a ZIP rewritten with its preambles zeroed (None for any other file),
    DICOM metadata) of the plaintext in `source` (a file, or a sealed part's reader)."""
    found = sniff(source)
    if found == "zip":
        try:
            check_dicom_zip(source, _zip_limits())
        except ZipRefused as exc:
            raise _refuse(str(exc), unreadable=True) from exc
        found = "dicom_zip"
    allowed = ALLOWED_CONTENT[kind]
    if found not in allowed:
        what = found or "not a DICOM, ZIP of DICOM, PDF, JPEG or PNG file"
        raise _refuse(f"{what} is not accepted as {kind} (accepted: {', '.join(sorted(allowed))})")
    try:
        if found == "dicom":  # its preamble was zeroed as it streamed in
            return found, None, dicom.read_file_metadata(source)
        if found == "dicom_zip":
            clean = _clean_zip(source)
            try:
                entries = check_dicom_zip(clean.path, _zip_limits())
                return found, clean, dicom.read_zip_metadata(clean.path, entries)
            except BaseException:  # a refused archive leaves no rewrite behind either
                clean.path.unlink(missing_ok=True)
                raise
    except (dicom.NotDicom, ZipRefused) as exc:
        raise _refuse(str(exc), unreadable=True) from exc
    return found, None, {}


def _clean_zip(source: Path | IO[bytes]) -> Received:
    """The archive rewritten with its preambles zeroed; whatever happens, an original file
    is removed, and the rewrite too unless it is handed back."""
    path = source if isinstance(source, Path) else None
    clean = (path or storage().tmp / f"upload-{uuid4().hex}").with_suffix(".clean")
    try:
        dicom.rewrite_zip_zeroing_preambles(source, clean)
        return Received(clean, sha256_of(clean), clean.stat().st_size)
    except (*UNREADABLE_ENTRY, OSError) as exc:  # CRC, size or deflate stream not as declared
        clean.unlink(missing_ok=True)
        raise ZipRefused(f"the archive is damaged or lies about its contents ({exc})") from exc
    except BaseException:
        clean.unlink(missing_ok=True)
        raise
    finally:
        if path is not None:
            path.unlink(missing_ok=True)


def store_document(
    referral: Referral, kind: str, filename: str | None, upload: Received | Path, actor: Actor
) -> Document:
    """Take ownership of an uploaded temp file: inspect, store, record, act.

    `upload` is what the request streamed in (already hashed and sanitised), or a file on
    disk (the demo, scripts), which is sanitised and hashed here.
    """
    received = upload if isinstance(upload, Received) else Received.of_path(upload)
    stored: Received | None = None
    try:
        _check_size(received.size, kind)
        content_type, stored, metadata = _inspect(received, kind)
        document = _record(
            referral, kind, filename, content_type, stored.size, stored.sha256, metadata, actor
        )
        publish(DocumentAdded(referral, document, actor))
        if kind == "mri_study":
            _mri_arrived(referral, document, actor)
        # Last, so a refusal or a failed step above stores nothing. Should the transaction
        # still roll back after this, `jobs.sweep_orphan_blobs` removes the blob later.
        # The data key of content stored before: any row's copy (its blob header's master
        # key may have been retired since), or the header's own.
        known = db.session.execute(
            select(Document.key_id, Document.wrapped_key)
            .where(Document.sha256 == stored.sha256, Document.key_id.is_not(None))
            .where(Document.id != document.id)
            .limit(1)
        ).all()
        sealed = storage().keep(stored.path, stored.sha256, [Sealed(*row) for row in known])
        document.key_id, document.wrapped_key = sealed or (None, None)
        db.session.flush()
    finally:
        received.path.unlink(missing_ok=True)
        if stored is not None:
            stored.path.unlink(missing_ok=True)
    return document


def _check_size(size: int, kind: str) -> None:
    if size == 0:
        raise EmptyFile
    if size > max_bytes(kind):
        raise FileTooLarge(
            f"file: {kind} may be at most {max_bytes(kind) // 2**20} MB", field="file"
        )


def store_sealed(
    referral: Referral, kind: str, filename: str | None, part: SealedPart, sha256: str, actor: Actor
) -> Document:
    """A file sealed as it arrived (a resumable upload's complete part, or a multipart file
    part), its DICOM preamble already zeroed, `sha256` the stored bytes' hash, made a
    document: the same checks, record and
    pipeline move as `store_document`; then the part itself becomes the stored blob (no
    second pass over the file), unless the content is stored already or is a ZIP (which
    is rewritten, and that rewrite stored)."""
    clean: Received | None = None
    try:
        _check_size(part.length, kind)
        with part.reader() as plaintext:
            content_type, clean, metadata = _examine(plaintext, kind)
        size, sha = (clean.size, clean.sha256) if clean else (part.length, sha256)
        document = _record(referral, kind, filename, content_type, size, sha, metadata, actor)
        publish(DocumentAdded(referral, document, actor))
        if kind == "mri_study":
            _mri_arrived(referral, document, actor)
        known = _known_keys(sha, document.id)
        if clean is not None:
            sealed = storage().keep(clean.path, sha, known)
        else:
            sealed = storage().keep_sealed(part.path, sha, part.sealed, known)
        document.key_id, document.wrapped_key = sealed or (None, None)
        db.session.flush()
    finally:
        part.remove()
        if clean is not None:
            clean.path.unlink(missing_ok=True)
    return document


def _known_keys(sha256: str, document_id: int) -> list[Sealed]:
    """The data key of content stored before: any row's copy (its blob header's master key
    may have been retired since)."""
    rows = db.session.execute(
        select(Document.key_id, Document.wrapped_key)
        .where(Document.sha256 == sha256, Document.key_id.is_not(None))
        .where(Document.id != document_id)
        .limit(1)
    ).all()
    return [Sealed(*row) for row in rows]


def _record(referral, kind, filename, content_type, size, sha, metadata, actor) -> Document:
    patient = referral.patient
    mismatch = (
        dicom.identity_mismatch(
            metadata, patient.given_name, patient.family_name, patient.date_of_birth
        )
        if metadata
        else None
    )
    document = Document(
        referral_id=referral.id,
        kind=kind,
        content_type=content_type,
        filename=clean_filename(filename),
        size_bytes=size,
        sha256=sha,
        dicom_metadata=metadata,
        identity_mismatch=mismatch is not None,
        mismatch_detail=mismatch,
        uploaded_by_type=actor.kind,
        uploaded_by_id=actor.id,
        uploaded_by_label=actor.label,
    )
    db.session.add(document)
    db.session.flush()
    audit.record(actor, "document.upload", referral.id, document_id=document.id, kind=kind)
    return document


def _mri_arrived(referral: Referral, document: Document, actor: Actor) -> None:
    """An MRI for a referral waiting for one moves it to review and tells the specialists."""
    if referral.stage not in (Stage.ENQUIRY, Stage.AWAITING_MRI):
        return  # later stages keep their place; an extra study is simply on file
    move_to_stage(referral, Stage.MRI_REVIEW, actor, note="MRI uploaded")
    specialists = db.session.scalars(
        select(StaffUser).where(StaffUser.role == "specialist", StaffUser.active.is_(True))
    )
    for specialist in specialists:
        enqueue(
            referral,
            kind="mri_uploaded_specialist",
            audience="coordinator",
            channels=["email"],
            key=f"mri:{document.id}:specialist:{specialist.id}",
            staff=specialist,
        )

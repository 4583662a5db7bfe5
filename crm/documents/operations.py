"""Accepting a document: decide its type by content, make it safe, store it, act on it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from flask import current_app
from sqlalchemy import exists, select

from crm.auth.models import StaffUser
from crm.core import audit
from crm.core.actors import Actor
from crm.core.errors import DomainError, ValidationFailed
from crm.documents import dicom
from crm.documents.models import Document
from crm.documents.sniff import sniff
from crm.documents.storage import sha256_of
from crm.documents.upload import storage
from crm.documents.zipcheck import ZipLimits, ZipRefused, check_dicom_zip
from crm.extensions import db
from crm.messaging.outbox import enqueue
from crm.referrals import guards
from crm.referrals.models import Referral
from crm.referrals.operations import move_to_stage
from crm.referrals.stages import MRI_ON_FILE, Stage

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


class FileTooLarge(DomainError):
    status, code, title = 413, "file-too-large", "The file is larger than allowed"


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


def _inspect(path: Path, kind: str) -> tuple[str, Path, dict[str, Any]]:
    """(content type, the safe file to store, DICOM metadata); refuses what is not allowed."""
    found = sniff(path)
    if found == "zip":
        try:
            check_dicom_zip(path, _zip_limits())
        except ZipRefused as exc:
            raise UnsupportedFile(f"file: {exc}", field="file") from exc
        found = "dicom_zip"
    allowed = ALLOWED_CONTENT[kind]
    if found not in allowed:
        what = found or "not a DICOM, ZIP of DICOM, PDF, JPEG or PNG file"
        raise UnsupportedFile(
            f"file: {what} is not accepted as {kind} (accepted: {', '.join(sorted(allowed))})",
            field="file",
        )
    if found == "dicom":
        dicom.zero_preamble(path)
        return found, path, dicom.read_file_metadata(path)
    if found == "dicom_zip":
        clean = path.with_suffix(".clean")
        dicom.rewrite_zip_zeroing_preambles(path, clean)
        path.unlink()
        return found, clean, dicom.read_zip_metadata(clean, check_dicom_zip(clean, _zip_limits()))
    return found, path, {}


def store_document(
    referral: Referral, kind: str, filename: str | None, temp_path: Path, actor: Actor
) -> Document:
    """Take ownership of an uploaded temp file: inspect, store, record, act."""
    try:
        size = temp_path.stat().st_size
        if size == 0:
            raise ValidationFailed({"file": "the file is empty"})
        if size > max_bytes(kind):
            raise FileTooLarge(f"file: {kind} may be at most {max_bytes(kind) // 2**20} MB")
        content_type, safe_path, metadata = _inspect(temp_path, kind)
        sha = sha256_of(safe_path)
        size = safe_path.stat().st_size
        storage().keep(safe_path, sha)
    finally:
        temp_path.unlink(missing_ok=True)
    document = _record(referral, kind, filename, content_type, size, sha, metadata, actor)
    if kind == "mri_study":
        _mri_arrived(referral, document, actor)
    return document


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
    if referral.stage == Stage.ENQUIRY:
        move_to_stage(referral, Stage.AWAITING_MRI, actor, note="MRI uploaded")
    if referral.stage != Stage.AWAITING_MRI:
        return
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


def _has_mri(referral: Referral) -> dict[str, Any]:
    present = db.session.scalar(
        select(exists().where(Document.referral_id == referral.id, Document.kind == "mri_study"))
    )
    return {"has_mri": bool(present)}


def register_guards() -> None:
    guards.register(MRI_ON_FILE, _has_mri)

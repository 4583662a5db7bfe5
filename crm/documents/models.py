from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from crm.core.db import utcnow
from crm.documents.encryption import Sealed
from crm.extensions import db

DOCUMENT_KINDS = ("mri_study", "radiology_report", "passport", "medical_record", "other")
CONTENT_TYPES = ("dicom", "dicom_zip", "pdf", "jpeg", "png")


class Document(db.Model):
    """A file attached to a referral, stored by the SHA-256 of its (sanitised) content."""

    __tablename__ = "documents"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('mri_study','radiology_report','passport','medical_record','other')",
            name="kind",
        ),
        CheckConstraint(
            "content_type IN ('dicom','dicom_zip','pdf','jpeg','png')", name="content_type"
        ),
        CheckConstraint("size_bytes >= 0", name="size"),
        CheckConstraint("uploaded_by_type IN ('agency','staff','patient')", name="uploader"),
        Index("ix_documents_referral", "referral_id", "created_at"),
        CheckConstraint("(key_id IS NULL) = (wrapped_key IS NULL)", name="sealed"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    referral_id: Mapped[int] = mapped_column(ForeignKey("referrals.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))
    content_type: Mapped[str] = mapped_column(String(12))
    filename: Mapped[str] = mapped_column(String(255))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    dicom_metadata: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    identity_mismatch: Mapped[bool] = mapped_column(default=False)
    mismatch_detail: Mapped[str | None] = mapped_column(Text)
    uploaded_by_type: Mapped[str] = mapped_column(String(10))
    uploaded_by_id: Mapped[int | None]
    uploaded_by_label: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The stored file's data key wrapped by master key `key_id` (encryption.py); both
    # NULL for a file stored before encryption at rest (read as plaintext).
    key_id: Mapped[str | None] = mapped_column(String(64))
    wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary)

    @property
    def sealed(self) -> Sealed | None:
        if self.key_id is None or self.wrapped_key is None:
            return None
        return Sealed(self.key_id, self.wrapped_key)


UPLOAD_STATES = ("open", "complete", "refused")


class UploadSession(db.Model):
    """A resumable upload (tus): the file arrives in one or more PATCH requests into a part
    file (`crm.documents.resumable`), and becomes a document once its last byte is in and
    its SHA-256 is the one the client declared. `id` is the unguessable name in its URL."""

    __tablename__ = "upload_sessions"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('mri_study','radiology_report','passport','medical_record','other')",
            name="kind",
        ),
        CheckConstraint("status IN ('open','complete','refused')", name="status"),
        CheckConstraint("owner_type IN ('agency','staff','patient')", name="owner"),
        CheckConstraint("length > 0 AND received >= 0 AND received <= length", name="sizes"),
        Index("ix_upload_sessions_expires", "status", "expires_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    referral_id: Mapped[int] = mapped_column(ForeignKey("referrals.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))
    filename: Mapped[str] = mapped_column(String(255))
    length: Mapped[int] = mapped_column(BigInteger)
    # what the last PATCH left in the part file (the part file's size is the truth: a
    # worker killed mid-chunk keeps what it wrote)
    received: Mapped[int] = mapped_column(BigInteger, default=0)
    sha256: Mapped[str] = mapped_column(String(64))  # declared by the client, of its bytes
    status: Mapped[str] = mapped_column(String(10), default="open")
    refusal: Mapped[str | None] = mapped_column(Text)
    document_id: Mapped[int | None] = mapped_column(ForeignKey("documents.id", ondelete="SET NULL"))
    owner_type: Mapped[str] = mapped_column(String(10))
    owner_id: Mapped[int | None]
    owner_label: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]

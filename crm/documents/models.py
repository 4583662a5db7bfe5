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

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import exists, select

from crm.core.actors import Actor
from crm.core.errors import NotFound
from crm.documents.models import Document
from crm.extensions import db
from crm.referrals.models import Referral
from crm.referrals.queries import MAX_ROW_ID, referral_for


def documents_of(referral_id: int) -> Sequence[Document]:
    return db.session.scalars(
        select(Document).where(Document.referral_id == referral_id).order_by(Document.created_at)
    ).all()


def document_for(actor: Actor, document_id: int) -> Document:
    """The document if `actor` may see its referral; 404 otherwise, as for a missing id."""
    # ids are `integer` columns: a larger number would fail in PostgreSQL, not find nothing
    document = db.session.get(Document, document_id) if 0 < document_id <= MAX_ROW_ID else None
    try:
        if document is None:
            raise NotFound
        referral_for(actor, document.referral_id)
    except NotFound as exc:
        raise NotFound(f"no document {document_id}") from exc
    return document


def has_mri(referral: Referral) -> dict[str, Any]:
    """The fact behind the guard `mri_document_present`: an MRI is on file, or the
    catalogue says the procedure needs none."""
    if not referral.procedure.requires_mri:
        return {"has_mri": True}
    present = db.session.scalar(
        select(exists().where(Document.referral_id == referral.id, Document.kind == "mri_study"))
    )
    return {"has_mri": bool(present)}

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from itertools import chain
from typing import Any

from flask import Response, request

from crm.auth.guards import any_caller, caller_scope, current_actor
from crm.core import audit
from crm.core.actors import Actor
from crm.core.blueprint import Blueprint
from crm.core.errors import DomainError
from crm.core.http import accepts
from crm.core.idempotency import idempotent
from crm.documents import operations, queries
from crm.documents.encryption import DocumentUnreadable
from crm.documents.intake import expect_upload, take_upload
from crm.documents.schemas import DocumentSchema, UploadArgs, UploadFileArgs
from crm.documents.upload import storage
from crm.referrals.queries import referral_for

log = logging.getLogger(__name__)

blp = Blueprint("documents", __name__, description="Documents: MRI studies, reports, passports")


def _referral_visible_first(view: Callable[..., Any]) -> Callable[..., Any]:
    """Another agency's referral is a 404 before a byte of the body is read."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        referral_for(current_actor(), kwargs["referral_id"])
        return view(*args, **kwargs)

    return wrapper


@blp.post("/referrals/<int:referral_id>/documents")
@accepts("multipart/form-data")
@any_caller
@_referral_visible_first
@idempotent(caller_scope)
@blp.arguments(UploadArgs, location="form")
@blp.arguments(UploadFileArgs, location="files")
@blp.response(201, DocumentSchema)
def upload_document(form, files, referral_id: int):
    """Upload a document (multipart: `kind` and `file`); the type is read from the content.

    The body is streamed to disk, never held in memory. An MRI for a referral in
    `enquiry` or `awaiting_mri` moves it to `mri_review` and tells the specialists.
    """
    referral = referral_for(current_actor(), referral_id, for_update=True)
    return take_upload(referral, form["kind"], files["file"], current_actor())


@blp.get("/referrals/<int:referral_id>/documents")
@any_caller
@blp.response(200, DocumentSchema(many=True))
def list_documents(referral_id: int):
    referral = referral_for(current_actor(), referral_id)
    audit.record(current_actor(), "document.list", referral.id)
    return queries.documents_of(referral.id)


@blp.get("/documents/<int:document_id>/content")
@any_caller
@blp.response(200, description="the file")
def download_document(document_id: int):
    """The stored (sanitised) file; access-checked and audited."""
    return send_document(current_actor(), document_id)


def send_document(actor: Actor, document_id: int):
    """The file as a download, if `actor` may see its referral (404 otherwise), audited:
    the API's endpoint and the console's link are this one function. The stored file is
    decrypted as it streams; its first chunk is verified before the response starts, so
    a damaged start is a clear 500, and a later damaged chunk cuts the download short
    (logged): no unverified byte is ever sent."""
    document = queries.document_for(actor, document_id)
    audit.record(actor, "document.download", document.referral_id, document_id=document.id)
    try:
        chunks = storage().open(document.sha256, document.sealed)
        first = next(chunks, b"")
    except (DocumentUnreadable, FileNotFoundError) as exc:
        log.error("document unreadable", extra={"document_id": document.id, "error": str(exc)})
        raise StoredDocumentUnreadable(
            f"document {document.id}: the stored file cannot be read ({exc})"
        ) from exc
    return Response(
        _guarded(document.id, chain([first], chunks)),
        mimetype=operations.MEDIA_TYPES[document.content_type],
        headers={
            "Content-Disposition": f'attachment; filename="{document.filename}"',
            "Content-Length": str(document.size_bytes),
        },
        direct_passthrough=True,
    )


def _guarded(document_id: int, chunks):
    try:
        yield from chunks
    except DocumentUnreadable as exc:
        log.error("document unreadable", extra={"document_id": document_id, "error": str(exc)})
        raise


class StoredDocumentUnreadable(DomainError):
    status, code, title = 500, "document-unreadable", "The stored document cannot be read"


@blp.before_request
def _allow_large_bodies() -> None:
    if request.method == "POST" and request.path.endswith("/documents"):
        expect_upload()

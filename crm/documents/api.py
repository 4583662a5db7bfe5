from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from itertools import chain
from typing import Any

from flask import Response, json, request, url_for

from crm.auth.guards import any_caller, caller_scope, current_actor
from crm.core import audit
from crm.core.actors import Actor
from crm.core.blueprint import Blueprint
from crm.core.errors import DomainError
from crm.core.http import accepts
from crm.core.idempotency import idempotent
from crm.documents import operations, queries, resumable, tus
from crm.documents.encryption import DocumentUnreadable
from crm.documents.intake import expect_upload, take_upload
from crm.documents.models import UploadSession
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


# --------------------------------------------------------------------------- resumable (tus)

_TUS_HEADER = {
    "in": "header",
    "name": "Tus-Resumable",
    "required": True,
    "schema": {"type": "string", "enum": ["1.0.0"]},
}
_TUS_CREATE = [
    _TUS_HEADER,
    {
        "in": "header",
        "name": "Upload-Length",
        "required": True,
        "schema": {"type": "integer"},
        "description": "the file's size in bytes",
    },
    {
        "in": "header",
        "name": "Upload-Metadata",
        "required": True,
        "schema": {"type": "string"},
        "description": (
            "`kind <base64>,filename <base64>,sha256 <base64>`: the sha256 is the whole "
            "file's SHA-256 in hex"
        ),
    },
]
_TUS_PATCH = [
    _TUS_HEADER,
    {
        "in": "header",
        "name": "Upload-Offset",
        "required": True,
        "schema": {"type": "integer"},
        "description": "where this chunk starts: the offset HEAD reports",
    },
]
_CHUNK_BODY = {
    "content": {tus.CHUNK_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}}
}


def _visible_upload(upload_id: str) -> UploadSession:
    """The caller's own upload, on a referral it may still see; 404 otherwise."""
    actor = current_actor()
    upload = resumable.find(upload_id, actor)
    referral_for(actor, upload.referral_id)
    return upload


def _upload_location(upload: UploadSession) -> str:
    return url_for("documents.upload_status", upload_id=upload.id)


@blp.route("/referrals/<int:referral_id>/uploads", methods=["OPTIONS"])
@blp.doc(responses={"204": {"description": "`Tus-Version`, `Tus-Extension`, `Tus-Max-Size`"}})
def tus_options(referral_id: int):
    """What this server speaks of tus: version 1.0.0, creation, termination, expiration."""
    return tus.options()


@blp.route("/referrals/<int:referral_id>/uploads", methods=["POST"])
@any_caller
@_referral_visible_first
@idempotent(caller_scope)
@blp.doc(
    parameters=_TUS_CREATE,
    responses={"201": {"description": "created; `Location` is the upload's address"}},
)
def start_upload(referral_id: int):
    """Start a resumable upload (tus 1.0.0 creation): for a large file or a weak link.

    Declare the length, the kind, the file name and the whole file's SHA-256; then PATCH
    the bytes to `Location` in one or more chunks (each from the offset HEAD reports).
    The last chunk's answer is the document (200), stored through the same checks as
    `POST .../documents`, once the bytes received hash to the declared SHA-256.
    """
    actor = current_actor()
    referral = referral_for(actor, referral_id)
    asked = tus.new_upload()
    upload = resumable.start(
        referral, actor, asked.kind, asked.filename, asked.length, asked.sha256
    )
    return tus.created(upload, _upload_location(upload))


@blp.route("/uploads/<upload_id>", methods=["HEAD"])
@any_caller
@blp.doc(
    parameters=[_TUS_HEADER],
    responses={
        "200": {
            "description": (
                "`Upload-Offset`: where to resume; `Upload-Document-Id` once stored; "
                "`Upload-Refused` if refused"
            )
        }
    },
)
def upload_status(upload_id: str):
    """Where a resumable upload stands: the offset to send from."""
    return tus.status(_visible_upload(upload_id))


@blp.route("/uploads/<upload_id>", methods=["PATCH"])
@accepts(tus.CHUNK_MEDIA_TYPE)
@any_caller
@blp.doc(
    parameters=_TUS_PATCH,
    requestBody=_CHUNK_BODY,
    responses={
        "204": {"description": "chunk kept; `Upload-Offset` is the new offset"},
        "200": {
            "description": "the last chunk: the stored document",
            "content": {"application/json": {"schema": DocumentSchema}},
        },
        # 409: not at that offset (`offset` says where), or another request is sending;
        # 422: the bytes do not hash to the declared SHA-256; 412: no Tus-Resumable
        "409": "CONFLICT",
        "412": "PRECONDITION_FAILED",
        "422": "UNPROCESSABLE_ENTITY",
    },
)
def upload_chunk(upload_id: str):
    """Send a chunk of a resumable upload from `Upload-Offset` (tus PATCH)."""
    upload = _visible_upload(upload_id)
    if tus.receive(upload) < upload.length:
        return tus.chunk_taken(upload)
    actor = current_actor()
    referral = referral_for(actor, upload.referral_id, for_update=True)
    document = resumable.finish(upload, referral, actor)
    return Response(
        json.dumps(DocumentSchema().dump(document)),
        status=200,
        headers=tus.headers(upload),
        mimetype="application/json",
    )


@blp.route("/uploads/<upload_id>", methods=["DELETE"])
@any_caller
@blp.doc(
    parameters=[_TUS_HEADER],
    responses={"204": {"description": "the upload and its bytes are gone"}},
)
def cancel_upload(upload_id: str):
    """Give up a resumable upload (tus termination): what arrived is deleted."""
    tus.check_version()
    resumable.terminate(_visible_upload(upload_id))
    return tus.bare(204, {"Tus-Resumable": tus.VERSION})

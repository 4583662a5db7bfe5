from __future__ import annotations

from pathlib import Path

from flask import request, send_file
from flask_smorest import Blueprint

from crm.auth.guards import any_caller, current_actor
from crm.core import audit
from crm.core.errors import ValidationFailed
from crm.core.http import accepts
from crm.core.idempotency import idempotent
from crm.documents import operations, queries
from crm.documents.schemas import DocumentSchema, UploadArgs, UploadFileArgs
from crm.documents.upload import remove_leftover_temps, storage
from crm.referrals.queries import referral_for

blp = Blueprint("documents", __name__, description="Documents: MRI studies, reports, passports")


@blp.post("/referrals/<int:referral_id>/documents")
@accepts("multipart/form-data")
@idempotent(lambda: current_actor().scope_key)
@any_caller
@blp.arguments(UploadArgs, location="form")
@blp.arguments(UploadFileArgs, location="files")
@blp.response(201, DocumentSchema)
def upload_document(form, files, referral_id: int):
    """Upload a document (multipart: `kind` and `file`); the type is read from the content.

    An MRI for a referral waiting for one moves it to the specialist review.
    """
    referral = referral_for(current_actor(), referral_id, for_update=True)
    upload = files["file"]
    temp_path = Path(upload.stream.name) if hasattr(upload.stream, "name") else None
    if temp_path is None:
        raise ValidationFailed({"file": "send the file as a multipart file part"})
    upload.stream.close()
    return operations.store_document(
        referral, form["kind"], upload.filename, temp_path, current_actor()
    )


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
    document = queries.document_for(current_actor(), document_id)
    audit.record(
        current_actor(), "document.download", document.referral_id, document_id=document.id
    )
    return send_file(
        storage().path(document.sha256),
        mimetype=operations.MEDIA_TYPES[document.content_type],
        as_attachment=True,
        download_name=document.filename,
        conditional=False,
    )


@blp.before_request
def _allow_large_bodies() -> None:
    """Uploads may be far larger than a JSON body; the per-kind limit is checked after."""
    if request.method == "POST" and request.path.endswith("/documents"):
        request.max_content_length = (
            max(operations.max_bytes("mri_study"), operations.max_bytes("other")) + 1024 * 1024
        )


@blp.teardown_request
def _clean_up(_exc: BaseException | None) -> None:
    remove_leftover_temps(request.environ)

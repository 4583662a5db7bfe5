"""The agency panel's resumable upload (tus 1.0.0, `crm/documents/tus.py`).

A signed-in agency user (of an active agency) starts an upload on a referral their agency
may see (`POST /agency/referrals/<id>/uploads`), then sends it in chunks to
`/agency/uploads/<id>` (`HEAD`, `PATCH`, `DELETE`). The actor is their agency, as for the
panel's one-shot upload and the API's: an upload started with one of the agency's API
keys can be finished here and the other way round; another agency's upload or referral
is 404. Every request but HEAD carries the panel's CSRF token in `X-CSRFToken` (the body
is the file, so the token cannot be a form field). Answers are problem+json, not pages:
a script reads them (with `words`, the sentence the page would show). The last chunk
answers the stored document's id and the referral page to show (which then says what
was received). `crm/panel/static/upload.js` is that script (over the loop it shares with
the portal, `crm/documents/static/resumable.js`).
"""

from __future__ import annotations

from flask import Blueprint, Response, flash, json, request, url_for

from crm.auth.signin import staff_actor
from crm.console.views import csrf
from crm.core.actors import Actor
from crm.core.errors import DomainError, NotFound, Unauthorized
from crm.documents import resumable, tus
from crm.documents.models import UploadSession
from crm.panel.auth import current_agency_user
from crm.panel.referrals import KIND_LABELS
from crm.panel.uploads import refusal_words
from crm.referrals.queries import referral_for

panel_uploads = Blueprint("panel_uploads", __name__, url_prefix="/agency")


@panel_uploads.before_request
def _signed_in_agency_with_csrf() -> None:
    user = current_agency_user()
    if user is None or user.agency is None or not user.agency.active:
        raise Unauthorized("sign in to the agency panel first")
    request.environ["crm.actor"] = staff_actor(user)
    if request.method not in {"GET", "HEAD", "OPTIONS"}:
        csrf.protect()


def _actor() -> Actor:
    return request.environ["crm.actor"]


def _upload(upload_id: str) -> UploadSession:
    upload = resumable.find(upload_id, _actor())
    try:
        referral_for(_actor(), upload.referral_id)
    except NotFound as exc:
        raise NotFound(f"no upload {upload_id}") from exc
    return upload


@panel_uploads.post("/referrals/<int:referral_id>/uploads")
def start(referral_id: int):
    referral = referral_for(_actor(), referral_id)
    asked = tus.new_upload()
    try:
        upload = resumable.start(
            referral, _actor(), asked.kind, asked.filename, asked.length, asked.sha256
        )
    except DomainError as exc:
        exc.extensions.setdefault("words", refusal_words(exc, asked.kind or None))
        raise
    return tus.created(upload, url_for("panel_uploads.chunk", upload_id=upload.id))


@panel_uploads.route("/uploads/<upload_id>", methods=["HEAD"])
def status(upload_id: str):
    return tus.status(_upload(upload_id))


@panel_uploads.route("/uploads/<upload_id>", methods=["PATCH"])
def chunk(upload_id: str):
    upload = _upload(upload_id)
    kind = upload.kind
    try:
        if tus.receive(upload) < upload.length:
            return tus.chunk_taken(upload)
        referral = referral_for(_actor(), upload.referral_id, for_update=True)
        document = resumable.finish(upload, referral, _actor())
    except DomainError as exc:
        exc.extensions.setdefault("words", refusal_words(exc, kind))
        raise
    flash(f"Received: {document.filename} ({KIND_LABELS[document.kind]}).")
    page = url_for("panel.referral", referral_id=referral.id) + "#documents"
    body = {"document_id": document.id, "page": page}
    return Response(json.dumps(body), 200, tus.headers(upload), mimetype="application/json")


@panel_uploads.route("/uploads/<upload_id>", methods=["DELETE"])
def cancel(upload_id: str):
    tus.check_version()
    resumable.terminate(_upload(upload_id))
    return tus.bare(204, {"Tus-Resumable": tus.VERSION})

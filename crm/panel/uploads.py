"""An agency uploads a document from its referral's page (and downloads what is on file).

The post goes through the API's own intake (`crm.documents.intake`): the same streaming,
limits per kind, content sniffing, ZIP checks, storage, audit and pipeline move (an MRI
for a referral waiting for one moves it to review), with the agency as the actor. Before
the body is read (the CSRF check reads the form), another agency's referral is already a
404 and the request may be as large as the largest document; a refusal comes back on the
referral's page in words, with the kind chosen kept.
"""

from __future__ import annotations

from flask import flash, g, redirect, request, url_for
from werkzeug.exceptions import RequestEntityTooLarge

from crm.auth.guards import current_actor
from crm.auth.signin import staff_actor
from crm.core.errors import DomainError, ValidationFailed
from crm.documents.api import send_document
from crm.documents.intake import expect_upload, take_upload
from crm.documents.models import DOCUMENT_KINDS
from crm.documents.operations import (
    ALLOWED_CONTENT,
    EmptyFile,
    UnreadableFile,
    UnsupportedFile,
    max_bytes,
)
from crm.documents.upload import FileTooLarge, largest_upload
from crm.extensions import db
from crm.panel.auth import agency_page, current_agency_user
from crm.panel.referrals import KIND_LABELS, KIND_PHRASES, accepted_words, referral_page
from crm.panel.views import panel
from crm.referrals.queries import referral_for

UPLOAD_ENDPOINT = "panel.upload_document"


@panel.url_value_preprocessor
def _before_an_upload_is_read(endpoint: str | None, values: dict | None) -> None:
    """Runs before the blueprint's CSRF check reads the form: for a signed-in agency user,
    another agency's referral is a 404 before a byte of the body is read, and the body may
    then be as large as the largest document (anyone else keeps the usual limit and is
    answered by `agency_page`)."""
    if endpoint != UPLOAD_ENDPOINT or request.method != "POST" or not values:
        return
    user = current_agency_user()
    if user is None or user.agency is None or not user.agency.active:
        return
    referral_for(staff_actor(user), values["referral_id"])
    expect_upload()


@panel.post("/referrals/<int:referral_id>/documents")
@agency_page
def upload_document(referral_id: int):
    actor = current_actor()
    kind = request.form.get("kind", "")
    try:
        if kind not in DOCUMENT_KINDS:
            raise ValidationFailed({"kind": "choose what kind of document this is"})
        part = request.files.get("file")
        if part is None or not part.filename:  # a browser sends an empty, nameless part
            raise ValidationFailed({"file": "no file was chosen"})
        referral = referral_for(actor, referral_id, for_update=True)
        document = take_upload(referral, kind, part, actor)
    except (DomainError, RequestEntityTooLarge) as exc:
        db.session.rollback()  # nothing half-stored; the page is read again below
        g.upload_error, g.upload_kind = refusal_words(exc, kind or None), kind
        status = exc.status if isinstance(exc, DomainError) else 413
        return referral_page(referral_id, status)
    flash(f"Received: {document.filename} ({KIND_LABELS[document.kind]}).")
    return redirect(url_for("panel.referral", referral_id=referral_id) + "#documents", 303)


def refusal_words(exc: Exception, kind: str | None) -> str:
    """Why the document was not taken, as a sentence (the API says the same as a 4xx)."""
    phrase = KIND_PHRASES.get(kind or "", "a document")
    if isinstance(exc, FileTooLarge | RequestEntityTooLarge):
        if kind in DOCUMENT_KINDS:
            limit = max_bytes(kind) // 2**20
            return f"This file is too large: {phrase} may be at most {limit} MB."
        limit = largest_upload() // 2**20
        return f"This file is too large: no document may be larger than {limit} MB."
    if isinstance(exc, UnreadableFile):
        reason = exc.detail.removeprefix("file: ")
        return (
            "This file could not be opened: it may be damaged or protected by a password, or "
            f"a ZIP may hold files that are not DICOM images ({reason})."
        )
    if isinstance(exc, UnsupportedFile) and kind in ALLOWED_CONTENT:
        return f"{phrase[0].upper()}{phrase[1:]} must be {accepted_words(kind)}; this file is not."
    if isinstance(exc, EmptyFile):
        return "This file is empty: choose the file again."
    if isinstance(exc, ValidationFailed):
        reasons = [e["reason"] for e in exc.extensions.get("errors", [])]
        return (reasons[0][:1].upper() + reasons[0][1:] + ".") if reasons else exc.detail
    return exc.detail if isinstance(exc, DomainError) else "The document was not taken."


@panel.get("/documents/<int:document_id>/content")
@agency_page
def download_document(document_id: int):
    """The file, through the API's own access check and audit (`document.download`)."""
    return send_document(current_actor(), document_id)


@panel.errorhandler(FileTooLarge)
@panel.errorhandler(RequestEntityTooLarge)
def _too_large_while_streaming(exc: Exception):
    """A body past the largest document is refused while the CSRF check reads it: the
    referral's page again, saying so, for its agency's user; a plain page otherwise."""
    from flask import render_template

    user = current_agency_user()
    referral_id = (request.view_args or {}).get("referral_id")
    words = refusal_words(exc, None)
    db.session.rollback()
    if request.endpoint != UPLOAD_ENDPOINT or user is None or referral_id is None:
        return render_template("panel/message.html", title="Too large", text=words), 413
    request.environ["crm.actor"] = staff_actor(user)
    g.upload_error = words
    return referral_page(referral_id, 413)

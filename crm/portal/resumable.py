"""The patient's resumable upload (tus 1.0.0, `crm/documents/tus.py`) on the private page.

`static/upload.js` uses it where the browser can (the plain form stays for the rest):
`POST /p/<token>/uploads` starts an upload for the link's referral while documents are
taken (`OPEN_STAGES`), `HEAD`/`PATCH`/`DELETE /p/<token>/uploads/<id>` go on with it. The
link is the credential, as for every portal page, and the upload must have been started
on that link's referral by its patient (anything else is 404); a post from another site
is refused (403), as on the page. The last chunk stores the document through the same
intake as every upload and answers where the page shows it (`page`); a refusal answers
its problem with `words`, the sentence the page would have shown, in the patient's
language. These routes have their own allowance per address (ten times the page's): a
500 MB study in 16 MiB chunks is some thirty requests.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, json, request, url_for
from flask_babel import gettext as _

from crm.core.errors import DomainError, Forbidden, NotFound
from crm.documents import resumable, tus
from crm.documents.models import UploadSession
from crm.extensions import db
from crm.portal.origin import posted_from_here
from crm.portal.uploads import OPEN_STAGES, hospital_phone, refusal_words
from crm.portal.views import _patient_actor, _referral
from crm.referrals.models import Referral

portal_uploads = Blueprint("portal_uploads", __name__)


class DocumentsClosed(DomainError):
    status, code, title = 409, "documents-closed", "Documents are no longer taken here"


def _words(exc: DomainError, kind: str | None) -> DomainError:
    exc.extensions.setdefault("words", refusal_words(exc, kind))
    return exc


def _linked(token: str) -> Referral:
    referral = _referral(token)
    if referral is None:
        raise NotFound("this link is not valid")
    return referral


def _upload(token: str, upload_id: str) -> tuple[Referral, UploadSession]:
    referral = _linked(token)
    return referral, resumable.find(upload_id, _patient_actor(referral), referral.id)


def _still_open(referral: Referral) -> None:
    if referral.stage not in OPEN_STAGES:
        words = _(
            "Documents can no longer be sent on this page. If you need to send us "
            "something, please call us on %(phone)s.",
            phone=hospital_phone(),
        )
        raise DocumentsClosed("documents are no longer taken on this page", words=words)


@portal_uploads.before_request
def _refuse_cross_site() -> None:
    if request.method in {"GET", "HEAD", "OPTIONS"}:
        return
    if not posted_from_here():
        raise Forbidden("this request came from another website")


@portal_uploads.post("/p/<token>/uploads")
def start(token: str):
    referral = _linked(token)
    _still_open(referral)
    asked = tus.new_upload()
    try:
        upload = resumable.start(
            referral,
            _patient_actor(referral),
            asked.kind,
            asked.filename,
            asked.length,
            asked.sha256,
        )
    except DomainError as exc:
        raise _words(exc, asked.kind or None) from None
    location = url_for("portal_uploads.chunk", token=token, upload_id=upload.id)
    return tus.created(upload, location)


@portal_uploads.route("/p/<token>/uploads/<upload_id>", methods=["HEAD"])
def status(token: str, upload_id: str):
    return tus.status(_upload(token, upload_id)[1])


@portal_uploads.route("/p/<token>/uploads/<upload_id>", methods=["PATCH"])
def chunk(token: str, upload_id: str):
    referral, upload = _upload(token, upload_id)
    kind = upload.kind
    try:
        if tus.receive(upload) < upload.length:
            return tus.chunk_taken(upload)
        referral = db.session.get(
            Referral, referral.id, with_for_update={"of": Referral}, populate_existing=True
        )
        assert referral is not None
        _still_open(referral)
        document = resumable.finish(upload, referral, _patient_actor(referral))
    except DomainError as exc:
        raise _words(exc, kind) from None
    page = url_for("portal.page", token=token, received=document.id, _anchor="documents")
    body: dict[str, Any] = {"document_id": document.id, "page": page}
    return Response(json.dumps(body), 200, tus.headers(upload), mimetype="application/json")


@portal_uploads.route("/p/<token>/uploads/<upload_id>", methods=["DELETE"])
def cancel(token: str, upload_id: str):
    tus.check_version()
    resumable.terminate(_upload(token, upload_id)[1])
    return tus.bare(204, {"Tus-Resumable": tus.VERSION})

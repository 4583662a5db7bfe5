"""The patient sends documents on their private page: the MRI, reports, the passport.

`POST /p/<token>/documents` takes the same multipart form as the partner API (`kind`,
`file`) through the same function (`crm.documents.intake`): the body streams to a temp
file, is hashed, sniffed, checked (ZIPs) and limited per kind exactly as an agency's
upload, and an MRI moves the referral to review and tells the specialists, with the
patient as the actor. What differs is only the answer: a page in the patient's language,
with every refusal in words (never an engine's message or a field name), the kind they
chose kept, and on success a redirect to the page saying what was received.

The form works without JavaScript; `static/upload.js` sends it with XMLHttpRequest to
show a progress bar and then shows the page the server answered with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, current_app, redirect, request, url_for
from flask_babel import format_date
from flask_babel import gettext as _
from werkzeug.datastructures import FileStorage
from werkzeug.exceptions import RequestEntityTooLarge

from crm.core.errors import DomainError, ValidationFailed
from crm.core.i18n import use_language
from crm.documents import queries
from crm.documents.intake import expect_upload, take_upload
from crm.documents.models import DOCUMENT_KINDS, Document
from crm.documents.operations import (
    ALLOWED_CONTENT,
    EmptyFile,
    UnreadableFile,
    UnsupportedFile,
    max_bytes,
)
from crm.documents.upload import FileTooLarge
from crm.extensions import db
from crm.portal.origin import posted_from_here
from crm.portal.views import (
    _browser_language,
    _invalid,
    _notice,
    _page,
    _patient_actor,
    _referral,
    portal,
)
from crm.referrals.models import Referral
from crm.referrals.queries import MAX_ROW_ID
from crm.referrals.stages import Stage

# The small script the form uses for its progress bar, served by the app (no CDN), with
# none of the page's per-patient rate limit: it is the same file for everyone.
assets = Blueprint("portal_assets", __name__, static_folder="static", static_url_path="/p/assets")

# From the enquiry until travel is booked, documents still help the case along.
OPEN_STAGES = frozenset(
    {
        Stage.ENQUIRY,
        Stage.AWAITING_MRI,
        Stage.MRI_REVIEW,
        Stage.PLAN_OFFERED,
        Stage.PLAN_ACCEPTED,
    }
)


def kind_labels() -> dict[str, str]:
    """Each kind of document in the patient's words (a function: gettext reads the
    language of the request at hand)."""
    return {
        "mri_study": _("MRI study"),
        "radiology_report": _("Radiology report"),
        "passport": _("Passport"),
        "medical_record": _("Medical record"),
        "other": _("Other document"),
    }


class NoFileChosen(ValidationFailed):
    def __init__(self) -> None:
        super().__init__({"file": "no file was chosen"})


class NoKindChosen(ValidationFailed):
    def __init__(self) -> None:
        super().__init__({"kind": "not one of the kinds of document"})


@dataclass(frozen=True)
class ReceivedDocument:
    kind: str
    label: str
    filename: str
    received_on: str


@dataclass(frozen=True)
class DocumentsSection:
    """What `portal/sections/documents.html` shows."""

    open: bool
    received: list[ReceivedDocument]
    just_received: ReceivedDocument | None
    mri_in_review: bool
    kinds: list[tuple[str, str, int]]  # (kind, label, largest size in MB)
    mri_mb: int
    other_mb: int
    phone: str

    @property
    def shown(self) -> bool:
        return self.open or bool(self.received)


def documents_section(referral: Referral) -> dict[str, Any]:
    """The section's context for `_page()`. It speaks the patient's language (gettext)."""
    use_language(referral.patient.language)
    zone = ZoneInfo(referral.patient.time_zone or "UTC")
    labels = kind_labels()
    received = {  # this referral's documents only, newest first
        row.id: _received(row, labels[row.kind], zone)
        for row in reversed(queries.documents_of(referral.id))
    }
    just = request.args.get("received", type=int) if request.method == "GET" else None
    just_received = received.get(just) if just and 0 < just <= MAX_ROW_ID else None
    section = DocumentsSection(
        open=referral.stage in OPEN_STAGES,
        received=list(received.values()),
        just_received=just_received,
        mri_in_review=just_received is not None
        and just_received.kind == "mri_study"
        and referral.stage == Stage.MRI_REVIEW,
        kinds=[(kind, labels[kind], _megabytes(kind)) for kind in DOCUMENT_KINDS],
        mri_mb=_megabytes("mri_study"),
        other_mb=_megabytes("other"),
        phone=hospital_phone(),
    )
    return {"documents": section}


def _received(document: Document, label: str, zone: ZoneInfo) -> ReceivedDocument:
    return ReceivedDocument(
        kind=document.kind,
        label=label,
        filename=document.filename,  # cleaned when stored: no path, only safe characters
        received_on=format_date(document.created_at.astimezone(zone).date(), "long"),
    )


def hospital_phone() -> str:
    """The hospital's number kept left-to-right inside any sentence (Unicode isolates), so
    an Arabic sentence does not turn "+90 212 ..." into "... 212 90+"."""
    return "\u2066" + current_app.config["CRM"]["HOSPITAL_PHONE"] + "\u2069"


def _megabytes(kind: str) -> int:
    return max_bytes(kind) // 2**20


@portal.post("/p/<token>/documents")
def upload_document(token: str):
    """A document from the patient: the same intake as the partner API's upload."""
    found = _referral(token)  # before a byte of the body is read
    if found is None:
        return _invalid()
    use_language(found.patient.language)
    if found.stage not in OPEN_STAGES:
        words = _(
            "Documents can no longer be sent on this page. If you need to send us "
            "something, please call us on %(phone)s.",
            phone=hospital_phone(),
        )
        return _page(found, token, 409, upload_error=words)
    expect_upload()
    kind: str | None = None
    try:
        kind = _chosen_kind()  # reading the form streams the file part to disk
        referral = db.session.get(
            Referral, found.id, with_for_update={"of": Referral}, populate_existing=True
        )
        assert referral is not None
        document = take_upload(referral, kind, _chosen_file(), _patient_actor(referral))
    except (DomainError, RequestEntityTooLarge) as exc:
        db.session.rollback()
        status = exc.status if isinstance(exc, DomainError) else 413
        return _page(found, token, status, upload_error=refusal_words(exc, kind), upload_kind=kind)
    return redirect(
        url_for("portal.page", token=token, received=document.id, _anchor="documents"), 303
    )


def _chosen_kind() -> str:
    kind = request.form.get("kind", "")
    if kind not in DOCUMENT_KINDS:
        raise NoKindChosen
    return kind


def _chosen_file() -> FileStorage:
    part = request.files.get("file")
    if part is None or not part.filename:  # a browser sends an empty, nameless part
        raise NoFileChosen
    return part


def refusal_words(exc: Exception, kind: str | None) -> str:
    """Why the document was not taken, in the patient's language."""
    if isinstance(exc, FileTooLarge | RequestEntityTooLarge):
        if kind is None:  # refused while streaming, before the form was read
            return _(
                "This file is too large. An MRI study or a medical record may be at most "
                "%(mri)s MB, other documents %(other)s MB.",
                mri=_megabytes("mri_study"),
                other=_megabytes("other"),
            )
        return too_large_words(kind)
    if isinstance(exc, UnreadableFile):
        return _(
            "We could not open this file: it may be damaged or protected by a password, "
            "or a ZIP archive may hold files that are not DICOM images. Please copy the "
            "images from your scan disc again and send them once more."
        )
    if isinstance(exc, UnsupportedFile) and kind is not None:
        return _wrong_type_words(kind)
    if isinstance(exc, EmptyFile):
        return _("This file is empty. Please choose the file again.")
    if isinstance(exc, NoFileChosen):
        return _("Please choose a file to send.")
    if isinstance(exc, NoKindChosen):
        return _("Please choose what kind of document this is.")
    return _(
        "We could not take this document. Please try again, or call us on %(phone)s.",
        phone=hospital_phone(),
    )


def too_large_words(kind: str) -> str:
    return _(
        "This file is too large: this kind of document may be at most %(size)s MB.",
        size=_megabytes(kind),
    )


def _wrong_type_words(kind: str) -> str:
    accepted = ALLOWED_CONTENT[kind]
    if accepted == {"dicom", "dicom_zip"}:
        return _(
            "An MRI study must be DICOM images: the folder from your scan disc as a ZIP "
            "archive, or a .dcm file. A PDF or a photo can be sent as a radiology report "
            "or another document."
        )
    if "dicom" in accepted:
        return _(
            "This kind of document must be a PDF, JPEG, PNG or DICOM file, or a ZIP "
            "archive of DICOM images."
        )
    return _("This kind of document must be a PDF, JPEG or PNG file.")


@portal.before_request
def _refuse_cross_site_posts() -> tuple[str, int] | None:
    """Every post to the patient's pages (documents, the plan, a check-in, how we contact
    them) must come from them (crm/portal/origin.py)."""
    if request.method != "POST" or posted_from_here():
        return None
    return cross_site_refusal()


def cross_site_refusal() -> tuple[str, int]:
    """A post that came from another website: refused before the body or the database."""
    _browser_language()
    return _notice(
        _(
            "This form was sent from another website, so we did not accept it. Please "
            "open your private link and send it from there."
        ),
        403,
    )

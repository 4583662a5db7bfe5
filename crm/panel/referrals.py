"""The agency's referrals: the list (`/agency/referrals`) and one referral's page.

Both read through the API's own queries with the agency Actor (`list_referrals`,
`referral_detail`, `documents_of`), so the panel shows an agency exactly what
`GET /api/v1/referrals` shows its key, audited the same way: its own referrals only (another
agency's is a 404 in the same words), each one's stage, history without staff's notes,
and for a patient already owned by another agency the neutral "already in care" that the
API's `attribution` says, nothing more.
"""

from __future__ import annotations

from typing import Any

from flask import g, render_template, request
from marshmallow import ValidationError

from crm.agency_messages import operations as agency_messages
from crm.agency_messages.queries import thread, unread_counts
from crm.auth.guards import current_actor
from crm.core import audit
from crm.core.db import utcnow
from crm.core.errors import flatten_marshmallow
from crm.documents.models import DOCUMENT_KINDS
from crm.documents.operations import ALLOWED_CONTENT, max_bytes
from crm.documents.queries import documents_of, has_mri
from crm.panel.auth import agency_page
from crm.panel.views import panel
from crm.referrals.queries import ReferralDetail, list_referrals, referral_detail
from crm.referrals.schemas import StaffReferralListArgs, attribution_of
from crm.referrals.stages import ALL_STAGES, PIPELINE, Stage

PAGE_SIZE = 25
ALREADY_IN_CARE = "Already in care at the hospital"
# The list's filters: the API's own query schema, with only what the panel's form sends.
LIST_FILTERS = ("stage", "q", "cursor")
STAGE_ORDER = [*PIPELINE, Stage.ON_HOLD, Stage.LOST]
KIND_LABELS = {
    "mri_study": "MRI study",
    "radiology_report": "Radiology report",
    "passport": "Passport",
    "medical_record": "Medical record",
    "other": "Other document",
}
KIND_PHRASES = {  # a kind inside a sentence
    "mri_study": "an MRI study",
    "radiology_report": "a radiology report",
    "passport": "a passport",
    "medical_record": "a medical record",
    "other": "another document",
}
CONTENT_WORDS = {
    "dicom": "DICOM",
    "dicom_zip": "a ZIP of DICOM images",
    "pdf": "PDF",
    "jpeg": "JPEG",
    "png": "PNG",
}
# What the hospital waits for at each stage, as the agency may be told it (no clinical
# detail: the stage and what comes next).
WAITING_FOR = {
    Stage.ENQUIRY: "A coordinator's first look at the enquiry.",
    Stage.AWAITING_MRI: "The patient's MRI.",
    Stage.MRI_REVIEW: "The specialist's review of the MRI.",
    Stage.PLAN_OFFERED: "The patient's answer to the treatment plan the hospital offered.",
    Stage.PLAN_ACCEPTED: "The travel arrangements: flights, hotel and the admission date.",
    Stage.TRAVEL_BOOKED: "The patient's arrival for admission.",
    Stage.IN_TREATMENT: "Nothing from you: the patient is in the hospital's care.",
    Stage.POST_OP: "The patient's check-ins after the operation.",
    Stage.FOLLOW_UP: "The patient's check-ins from home.",
    Stage.COMPLETED: "Nothing: the case is complete.",
    Stage.LOST: "Nothing: the referral is closed.",
    Stage.ON_HOLD: "The referral is paused; the coordinator will tell you what lets it go on.",
}
MRI_WANTED = (
    "The MRI of the affected area: upload it below as an MRI study "
    "(the DICOM files from the scan disc, as a ZIP or .dcm files)."
)


def days_since(moment) -> int:
    return max((utcnow() - moment).days, 0)


@panel.get("/referrals")
@agency_page
def referrals():
    raw = {name: request.args.get(name, "").strip() for name in LIST_FILTERS}
    raw = {name: value for name, value in raw.items() if value}
    errors: dict[str, str] = {}
    page = None
    try:
        args = StaffReferralListArgs().load(
            {**raw, **({"stage": [raw["stage"]]} if "stage" in raw else {})}
        )
    except ValidationError as exc:
        errors = {
            e["field"].split(".")[-1].split("[")[0]: e["reason"]
            for e in flatten_marshmallow(exc.messages)
        }
    else:
        page = list_referrals(current_actor(), {**args, "limit": PAGE_SIZE})
    rows = [_row(referral) for referral in page.items] if page else []
    unread = unread_counts([row["id"] for row in rows], "to_agency")
    next_args = (
        {**{k: v for k, v in raw.items() if k != "cursor"}, "cursor": page.next_cursor}
        if page and page.next_cursor
        else None
    )
    return render_template(
        "panel/referrals.html",
        rows=rows,
        unread=unread,
        raw=raw,
        errors=errors,
        stages=[(str(stage), stage) for stage in STAGE_ORDER if stage in ALL_STAGES],
        next_args=next_args,
        first_args=({k: v for k, v in raw.items() if k != "cursor"} if raw.get("cursor") else None),
        already_in_care=ALREADY_IN_CARE,
    ), (422 if errors else 200)


def _row(referral) -> dict[str, Any]:
    return {
        "id": referral.id,
        "reference": referral.reference,
        "agency_reference": referral.agency_reference,
        "patient": referral.patient.full_name,
        "procedure": referral.procedure.name,
        "stage": referral.stage,
        "held_from_stage": referral.held_from_stage,
        "days_in_stage": days_since(referral.stage_entered_at),
        "updated_at": referral.updated_at,
        "already_in_care": attribution_of(referral) == "already_in_care",
    }


@panel.get("/referrals/<int:referral_id>")
@agency_page
def referral(referral_id: int):
    return referral_page(referral_id)


def referral_page(referral_id: int, status: int = 200):
    """The page, also shown again (with `g.upload_error`, `g.message_error`) by a refused
    upload or message."""
    actor = current_actor()
    detail = referral_detail(actor, referral_id)  # 404 for another agency's; audited
    documents = documents_of(detail.id)
    audit.record(actor, "document.list", detail.id)  # as GET .../documents is
    messages = list(thread(detail.id))
    new_ids = {m.id for m in messages if m.direction == "to_agency" and m.read_at is None}
    agency_messages.mark_read(detail.referral, actor)
    return render_template(
        "panel/referral.html",
        referral=detail,
        already_in_care=attribution_of(detail.referral) == "already_in_care",
        days_in_stage=detail.time_in_stages.get(detail.stage, 0) // 86400,
        history=sorted(_history(detail), key=lambda t: t["occurred_at"], reverse=True),
        waiting_for=waiting_for(detail),
        documents=documents,
        kinds=[(kind, KIND_LABELS[kind], max_bytes(kind) // 2**20) for kind in DOCUMENT_KINDS],
        kind_labels=KIND_LABELS,
        accepted={kind: accepted_words(kind) for kind in DOCUMENT_KINDS},
        messages=messages,
        new_ids=new_ids,
        upload_error=g.get("upload_error"),
        upload_kind=g.get("upload_kind"),
        message_error=g.get("message_error"),
        message_draft=g.get("message_draft", ""),
        max_message=agency_messages.MAX_BODY,
    ), status


def _history(detail: ReferralDetail) -> list[dict[str, Any]]:
    fields = ("from_stage", "to_stage", "actor_label", "reason", "occurred_at")
    return [
        entry if isinstance(entry, dict) else {name: getattr(entry, name) for name in fields}
        for entry in detail.history
    ]


def waiting_for(detail: ReferralDetail) -> str:
    """What the hospital waits for now: the MRI while the procedure needs one and none is
    on file (the fact behind the guard `mri_document_present`), else the stage's words."""
    stage = Stage(detail.stage)
    if stage in (Stage.ENQUIRY, Stage.AWAITING_MRI) and not has_mri(detail.referral)["has_mri"]:
        return MRI_WANTED
    return WAITING_FOR[stage]


def accepted_words(kind: str) -> str:
    """`PDF, JPEG or PNG`: what a kind of document may be, in the order of CONTENT_WORDS."""
    words = [words for code, words in CONTENT_WORDS.items() if code in ALLOWED_CONTENT[kind]]
    return " or ".join([", ".join(words[:-1]), words[-1]]) if len(words) > 1 else words[0]

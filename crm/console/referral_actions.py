"""The referral page's everyday actions: each a small form that runs the SAME operation as
the API endpoint (with the same roles), parsed by the API's own schema, then back to the
page (303). A refusal (a guard, a field, a stage) is flashed in words by `attempt`.

Also the document download behind the timeline's links: a browser has no bearer token, so
the console streams the file through the API's own access check and audit.
"""

from __future__ import annotations

from typing import Any

from flask import redirect, request, url_for
from marshmallow import Schema, ValidationError

from crm.auth.guards import current_actor
from crm.console.actions import attempt
from crm.console.auth import staff_page
from crm.console.views import console
from crm.core.errors import ValidationFailed, flatten_marshmallow
from crm.documents.api import send_document
from crm.messaging import operations as messaging
from crm.messaging.schemas import AdHocMessageArgs
from crm.referrals import operations as referrals
from crm.referrals.queries import referral_for
from crm.referrals.schemas import NoteArgs, OwnerArgs, TransitionArgs

# The roles of the API endpoints these forms stand for (their `staff_only(...)`).
MOVERS = ("coordinator", "specialist", "manager")  # POST /referrals/{id}/transitions
OWNER_SETTERS = ("coordinator", "manager")  # PUT /referrals/{id}/owner
MESSAGE_SENDERS = ("coordinator", "manager")  # POST /referrals/{id}/messages


def _back(referral_id: int, anchor: str = ""):
    return redirect(url_for("console.referral", referral_id=referral_id) + anchor, 303)


def _load(schema: Schema, data: dict[str, Any]) -> dict[str, Any]:
    """The form read by the API's schema: the same fields, lengths and choices."""
    try:
        return schema.load(data)
    except ValidationError as exc:
        raise ValidationFailed(flatten_marshmallow(exc.messages)) from exc


def _text(name: str) -> str | None:
    value = request.form.get(name, "").strip()
    return value or None


def _locked(referral_id: int):
    return referral_for(current_actor(), referral_id, for_update=True)


@console.post("/referrals/<int:referral_id>/owner")
@staff_page(*OWNER_SETTERS)
def assign_owner(referral_id: int):
    referral = _locked(referral_id)

    def assign():
        raw = request.form.get("owner_id", "").strip()
        if raw and not raw.isdigit():
            raise ValidationFailed({"owner_id": "choose a person from the list"})
        args = _load(OwnerArgs(), {"owner_id": int(raw) if raw else None})
        return referrals.assign_owner(referral, args["owner_id"], current_actor())

    done = "Owner changed." if request.form.get("owner_id") else "Nobody owns it now."
    attempt(assign, done=done)
    return _back(referral_id)


@console.post("/referrals/<int:referral_id>/move")
@staff_page(*MOVERS)
def move(referral_id: int):
    referral = _locked(referral_id)
    data = {k: v for k in ("to", "reason", "note") if (v := _text(k))}
    if data.get("to") != "lost":
        data.pop("reason", None)  # the reason select stays on the form; it counts for lost

    def run():
        args = _load(TransitionArgs(), data)
        return referrals.move_to_stage(
            referral, args["to"], current_actor(), args.get("reason"), args.get("note")
        )

    from crm.console.referral import stage_label

    attempt(run, done=f"Moved to {stage_label(data.get('to', ''))}.")
    return _back(referral_id)


@console.post("/referrals/<int:referral_id>/notes")
@staff_page()
def add_note(referral_id: int):
    referral = _locked(referral_id)

    def run():
        args = _load(NoteArgs(), {"body": request.form.get("body", "").strip()})
        return referrals.add_note(referral, args["body"], current_actor())

    attempt(run, done="Note added.")
    return _back(referral_id)


@console.post("/referrals/<int:referral_id>/mri-request")
@staff_page(*MESSAGE_SENDERS)
def request_mri(referral_id: int):
    referral = _locked(referral_id)
    attempt(
        lambda: messaging.request_mri(referral, current_actor()),
        done="The patient is asked for the MRI (see the timeline for how it goes).",
    )
    return _back(referral_id)


def _message_args() -> dict[str, Any]:
    return {
        "channels": request.form.getlist("channels"),
        "fallback": request.form.get("fallback") == "on",
        "subject": request.form.get("subject", "").strip(),
        "message": request.form.get("message", "").strip(),
    }


@console.post("/referrals/<int:referral_id>/messages")
@staff_page(*MESSAGE_SENDERS)
def send_message(referral_id: int):
    referral = _locked(referral_id)
    attempt(
        lambda: messaging.send_ad_hoc(
            referral, _load(AdHocMessageArgs(), _message_args()), current_actor()
        ),
        done="Message queued for the patient.",
    )
    return _back(referral_id)


@console.get("/documents/<int:document_id>/content")
@staff_page()
def document_content(document_id: int):
    """The file, through the API's access check and audit (GET /api/v1/documents/{id}/content)."""
    return send_document(current_actor(), document_id)

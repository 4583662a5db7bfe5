"""Duplicates: the likely duplicate patients waiting for a coordinator, the longest waiting
first, each with its evidence side by side, to link (the same person, both rows stay),
merge (the same person, one row) or dismiss (someone else) through
`crm.duplicates.operations` and `crm.merges.operations` with the staff actor, as the API's
POST /api/v1/duplicates/{id}/link, /merge and /dismiss do (coordinators and managers; an
admin always). A merge is confirmed on a page of its own that says what will happen:
which row survives, what moves, the fields filled in or in conflict, and each channel's
consent outcome.

Phones and emails are masked as on the outbox page (`+90*******67`); the page names
patients, so one audit row records which matches were shown.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import redirect, render_template, url_for

from crm.auth.guards import current_actor
from crm.console.actions import attempt
from crm.console.auth import staff_page
from crm.console.views import console
from crm.core import audit
from crm.duplicates import operations, queries
from crm.duplicates.models import DuplicateMatch
from crm.merges import operations as merges
from crm.merges import plan as merge_plan
from crm.merges.rules import FILLABLE
from crm.messaging.queries import mask_address
from crm.patients.models import Patient
from crm.referrals.models import Referral

DECIDERS = ("coordinator", "manager")  # the API's staff_only on link and dismiss
LIMIT = 50
PAGE = "console.duplicates"


@dataclass(frozen=True)
class Row:
    """One line of the comparison: what each patient has, and whether it matched."""

    label: str
    new: str
    known: str
    matched: bool


@dataclass(frozen=True)
class Evidence:
    match: DuplicateMatch
    rows: list[Row]
    fields: list[str]
    name_score: int
    known_referrals: list[Referral]


def _masked(channel: str, value: str | None) -> str:
    return mask_address(channel, value) if value else "—"


def _rows(new: Patient, known: Patient, fields: set[str]) -> list[Row]:
    def born(patient: Patient) -> str:
        return patient.date_of_birth.isoformat() if patient.date_of_birth else "—"

    return [
        Row("Name", new.full_name, known.full_name, "name" in fields),
        Row("Date of birth", born(new), born(known), "date_of_birth" in fields),
        Row("Phone", _masked("sms", new.phone), _masked("sms", known.phone), "phone" in fields),
        Row(
            "Email",
            _masked("email", new.email),
            _masked("email", known.email),
            "email" in fields,
        ),
        Row("Passport", "not recorded", "not recorded", False),
        Row("Country", new.country, known.country, False),
    ]


def _evidence(matches: list[DuplicateMatch]) -> list[Evidence]:
    referrals = queries.referrals_of_patients(m.matched_patient_id for m in matches)
    found = []
    for match in matches:
        fields = list(match.evidence.get("fields", []))
        found.append(
            Evidence(
                match,
                _rows(match.patient, match.matched_patient, set(fields)),
                fields,
                int(match.evidence.get("name_score", 0)),
                referrals.get(match.matched_patient_id, []),
            )
        )
    return found


@console.get("/duplicates")
@staff_page(*DECIDERS)
def duplicates():
    actor = current_actor()
    matches = queries.open_matches_oldest_first(LIMIT)
    audit.record(actor, "duplicate.list", match_ids=[m.id for m in matches])
    return render_template(
        "console/duplicates.html",
        items=_evidence(matches),
        total=queries.count_open_matches(),
        limit=LIMIT,
    )


@console.post("/duplicates/<int:match_id>/link")
@staff_page(*DECIDERS)
def duplicate_link(match_id: int):
    attempt(
        lambda: operations.link(queries.match_for(match_id, for_update=True), current_actor()),
        done="Linked: the same person. Attribution was decided again; the task is done.",
    )
    return redirect(url_for(PAGE), 303)


@console.post("/duplicates/<int:match_id>/dismiss")
@staff_page(*DECIDERS)
def duplicate_dismiss(match_id: int):
    attempt(
        lambda: operations.dismiss(queries.match_for(match_id, for_update=True), current_actor()),
        done="Dismissed: not the same person. The match stays on record; the task is done.",
    )
    return redirect(url_for(PAGE), 303)


@dataclass(frozen=True)
class ContactLine:
    """One field of the merge's confirmation: both values and what the merge does."""

    label: str
    survivor: str
    merged: str
    outcome: str


_CONTACT = (
    ("Name", "full_name", None),
    ("Date of birth", "date_of_birth", None),
    ("Sex", "sex", None),
    ("Country", "country", None),
    ("Phone", "phone", "sms"),
    ("Email", "email", "email"),
    ("Language", "language", None),
    ("Time zone", "time_zone", None),
)
_FIELDS_OF = {"full_name": ("given_name", "family_name")}


def _shown(patient: Patient, name: str, channel: str | None) -> str:
    value = getattr(patient, name)
    if channel:
        return _masked(channel, value)
    return value.isoformat() if hasattr(value, "isoformat") else (value or "—")


def _contact_lines(found: merge_plan.MergePlan) -> list[ContactLine]:
    lines = []
    for label, name, channel in _CONTACT:
        fields = _FIELDS_OF.get(name, (name,))
        if any(f in found.filled for f in fields):
            outcome = f"filled in from #{found.merged.id}"
        elif any(f in found.conflicts for f in fields):
            outcome = f"differs: #{found.survivor.id}'s kept"
        elif any(f in FILLABLE for f in fields) and not getattr(found.survivor, name):
            outcome = "none on either"
        else:
            outcome = "kept"
        lines.append(
            ContactLine(
                label,
                _shown(found.survivor, name, channel),
                _shown(found.merged, name, channel),
                outcome,
            )
        )
    return lines


@console.get("/duplicates/<int:match_id>/merge")
@staff_page(*DECIDERS)
def duplicate_merge_confirm(match_id: int):
    """What a merge would do, before anyone presses the button. Changes nothing."""
    found = merge_plan.preview(queries.match_for(match_id))
    audit.record(current_actor(), "duplicate.merge_preview", match_ids=[match_id])
    return render_template(
        "console/duplicate_merge.html",
        plan=found,
        contact=_contact_lines(found),
        known_referrals=queries.referrals_of_patients([found.survivor.id])[found.survivor.id],
    )


@console.post("/duplicates/<int:match_id>/merge")
@staff_page(*DECIDERS)
def duplicate_merge(match_id: int):
    done = attempt(
        lambda: merges.merge(queries.match_for(match_id), current_actor()),
        done="Merged: one patient record now. Referrals, consents and messages moved;"
        " attribution was decided again; the task is done.",
    )
    if done is None:
        return redirect(url_for("console.duplicate_merge_confirm", match_id=match_id), 303)
    return redirect(url_for(PAGE), 303)

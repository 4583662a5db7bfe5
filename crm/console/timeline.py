"""The referral page's timeline: everything that happened to one referral, newest first.

Gathered from each package's own queries, one query per kind (never one per entry), for a
referral its reader has already been allowed to see and whose read is already audited. A
specialist sees plan versions without their amounts: specialists never see revenue.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from babel.numbers import format_currency, get_currency_precision
from flask import url_for

from crm.catalogue.check_in import CheckInForm
from crm.core.actors import Actor
from crm.core.audit import trail_of
from crm.core.db import utcnow
from crm.documents.queries import documents_of
from crm.followup.operations import assess
from crm.followup.queries import check_ins_of
from crm.messaging.queries import messages_of
from crm.plans.queries import plans_of
from crm.referrals.models import Referral
from crm.reviews.queries import reviews_of
from crm.tasks.queries import tasks_of
from crm.travel.queries import trip_of

# The filter's choices, in the order the page offers them. "all" is every kind but the
# audit trail (every page view is a row of it); "everything" adds the trail.
KINDS = {
    "stage": "Stage changes",
    "message": "Messages sent",
    "reply": "Patient replies",
    "document": "Documents",
    "review": "Reviews",
    "plan": "Treatment plans",
    "travel": "Travel",
    "check_in": "Check-ins and alerts",
    "task": "Tasks",
    "note": "Notes",
    "audit": "Audit trail",
}
AUDIT_LIMIT = 200
REVENUE_BLIND_ROLES = frozenset({"specialist"})


@dataclass
class Entry:
    """One line of the timeline: when, what kind, a sentence, who, and the details."""

    kind: str
    at: datetime
    title: str
    who: str | None = None
    lines: list[str] = field(default_factory=list)
    flag: str | None = None  # a warning shown prominently (a red flag, a name mismatch)
    status: str | None = None  # a message's delivery status, a task's state
    patient_zone: str | None = None  # show the patient's local time beside the viewer's
    body: str | None = None  # the patient's own words, a note, a message's text
    link: tuple[str, str] | None = None  # (label, url)
    moment: tuple[str, datetime] | None = None  # a second time worth showing: "Delivered at"
    reply: Any = None  # an inbound reply the coordinator may answer
    reply_task: Any = None  # the open task that reply raised


@dataclass
class Timeline:
    entries: list[Entry]
    kind: str
    counts: dict[str, int]


def referral_timeline(referral: Referral, actor: Actor, kind: str = "all") -> Timeline:
    """The entries of `kind` ("all", "everything" or one of KINDS), newest first."""
    kind = kind if kind in KINDS or kind == "everything" else "all"
    wanted = set(KINDS) if kind == "everything" else {kind} if kind in KINDS else set(KINDS)
    if kind == "all":
        wanted.discard("audit")
    tasks = tasks_of(referral.id) if wanted & {"task", "reply"} else []
    gatherers = {_GATHER[name] for name in wanted}  # replies come with the messages
    entries = [
        entry
        for gather in sorted(gatherers, key=lambda g: g.__name__)
        for entry in gather(referral, actor, tasks)
        if entry.kind in wanted
    ]
    entries.sort(key=lambda e: e.at, reverse=True)
    counts: dict[str, int] = {}
    for entry in entries:
        counts[entry.kind] = counts.get(entry.kind, 0) + 1
    return Timeline(entries, kind, counts)


def _stage(referral: Referral, _actor: Actor, _tasks: list) -> list[Entry]:
    from crm.console.referral import stage_label

    entries = []
    for move in referral.history:
        if move.from_stage is None:
            title = f"Referral created in {stage_label(move.to_stage)}"
        else:
            title = f"Moved from {stage_label(move.from_stage)} to {stage_label(move.to_stage)}"
        lines = [f"Reason: {move.reason.replace('_', ' ')}"] if move.reason else []
        entries.append(
            Entry("stage", move.occurred_at, title, move.actor_label, lines, body=move.note)
        )
    return entries


def _note(referral: Referral, _actor: Actor, _tasks: list) -> list[Entry]:
    return [
        Entry("note", note.created_at, "Note", note.author_label, body=note.body)
        for note in referral.notes
    ]


_CHANNEL = {"sms": "SMS", "email": "EMAIL", "whatsapp": "WhatsApp"}
_AUDIENCE = {"patient": "the patient", "coordinator": "the coordinator", "agency": "the agency"}


def _message(referral: Referral, actor: Actor, tasks: list) -> list[Entry]:
    messages = messages_of(referral.id)
    now = utcnow()
    entries = [_outbound(m, actor, now) for m in messages["outbound"]]
    reply_tasks = {t.dedupe_key: t for t in tasks if t.dedupe_key and t.status == "open"}
    entries.extend(
        Entry(
            "reply",
            inbound.received_at,
            f"The patient replied by {_CHANNEL.get(inbound.channel, 'SMS')}"
            if inbound.classification == "reply"
            else f"The patient sent the keyword {inbound.body.strip().upper()[:20]}",
            lines=[f"From {inbound.from_address}"],
            patient_zone=referral.patient.time_zone,
            body=inbound.body,
            reply=inbound if inbound.classification == "reply" else None,
            reply_task=reply_tasks.get(f"reply:{inbound.provider_id}"),
        )
        for inbound in messages["inbound"]
    )
    return entries


def _outbound(message: Any, actor: Actor, now: datetime) -> Entry:
    # `plan_offered_patient` to the patient reads "plan offered"
    kind = message.kind.removesuffix(f"_{message.audience}").replace("_", " ")
    kind = "a message from staff" if kind == "ad hoc" else kind
    title = (
        f"{_CHANNEL.get(message.channel, message.channel.upper())} to "
        f"{_AUDIENCE.get(message.audience, message.audience)}: {kind}"
    )
    lines = [f"Subject: {message.subject}"] if message.subject else []
    if message.channel == "whatsapp" and message.status in {"sent", "delivered", "undelivered"}:
        lines.append(
            f"Sent as the approved template {message.content_sid}"
            if message.content_sid
            else "Sent as free text in the patient's 24-hour WhatsApp session"
        )
    words, moment = _delivery(message, now)
    if words:
        lines.append(words)
    if message.rule_code:
        lines.append(f"Sent by the rule {message.rule_code}")
    return Entry(
        "message",
        message.created_at,
        title,
        lines=lines,
        status=_status_word(message, now),
        moment=moment,
        patient_zone=message.time_zone if message.audience == "patient" else None,
        # a plan's email quotes its price: the bodies are not for revenue-blind roles
        body=message.body_text if actor.role not in REVENUE_BLIND_ROLES else None,
    )


def _status_word(message: Any, now: datetime) -> str:
    if message.status == "queued" and message.next_attempt_at > now:
        return "held"
    return message.status


def _delivery(message: Any, now: datetime) -> tuple[str | None, tuple[str, datetime] | None]:
    """The delivery status in words (if more than its badge says), and its moment."""
    status = _status_word(message, now)
    if status == "held":
        return "Held by quiet hours or a spend cap", ("Goes out", message.next_attempt_at)
    if status in {"suppressed", "cancelled"} and message.suppressed_reason:
        return f"{status.capitalize()}: {message.suppressed_reason.replace('_', ' ')}", None
    if status in {"failed", "undelivered"}:
        error = message.error_message or message.error_code or "no reason given"
        return f"{status.capitalize()} after {message.attempts} attempt(s): {error}", None
    if status == "delivered" and message.delivered_at:
        return "Delivered", ("Delivered", message.delivered_at)
    if status == "sent" and message.sent_at:
        return "Sent, not yet confirmed delivered", ("Sent", message.sent_at)
    return None, None  # queued, sending: the status says it all


def _document(referral: Referral, _actor: Actor, _tasks: list) -> list[Entry]:
    entries = []
    for document in documents_of(referral.id):
        lines = [f"{document.filename} · {document.content_type} · {_size(document.size_bytes)}"]
        meta = document.dicom_metadata or {}
        facts = [
            ("Modality", meta.get("modality") or ", ".join(meta.get("modalities") or [])),
            ("Body part", meta.get("body_part")),
            ("Study date", meta.get("study_date")),
            ("Images", meta.get("images")),
        ]
        shown = [f"{label}: {value}" for label, value in facts if value]
        if shown:
            lines.append(" · ".join(shown))
        entries.append(
            Entry(
                "document",
                document.created_at,
                f"Document uploaded: {document.kind.replace('_', ' ')}",
                document.uploaded_by_label,
                lines,
                flag=f"Name mismatch: {document.mismatch_detail}"
                if document.identity_mismatch
                else None,
                link=(
                    f"Download {document.filename}",
                    url_for("console.document_content", document_id=document.id),
                ),
            )
        )
    return entries


def _size(size: int) -> str:
    for unit in ("bytes", "KB", "MB"):
        if size < 1024 or unit == "MB":
            return f"{size} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size = size / 1024  # type: ignore[assignment]
    return f"{size:.1f} GB"


def _review(referral: Referral, _actor: Actor, _tasks: list) -> list[Entry]:
    entries = []
    labels = {f.code: f.label for f in referral.procedure.review_field_list}
    for review in reviews_of(referral.id):
        lines = [
            f"{labels.get(code, code)}: {value}"
            for code, value in (review.procedure_fields or {}).items()
        ]
        if review.recommended_procedure:
            lines.append(f"Recommended: {review.recommended_procedure}")
        if review.risks_to_discuss:
            lines.append(f"Risks to discuss: {review.risks_to_discuss}")
        if review.request_to_patient:
            lines.append(f"Asked the patient: {review.request_to_patient}")
        entries.append(
            Entry(
                "review",
                review.created_at,
                f"Review: {review.decision.replace('_', ' ')}",
                review.specialist_label,
                lines,
                body=review.findings or None,
            )
        )
    return entries


def _plan(referral: Referral, actor: Actor, _tasks: list) -> list[Entry]:
    entries = []
    for plan in plans_of(referral.id):
        lines = [f"{plan.hospital} · {plan.surgeon} · valid until {plan.valid_until:%Y-%m-%d}"]
        if actor.role not in REVENUE_BLIND_ROLES:
            lines.append(f"Total {money(plan.total_minor, plan.currency)}")
        entries.append(
            Entry(
                "plan",
                plan.created_at,
                f"Treatment plan version {plan.version} offered",
                plan.created_by_label,
                lines,
                status=plan.status,
            )
        )
        if plan.accepted_at:
            entries.append(
                Entry(
                    "plan", plan.accepted_at, f"Plan version {plan.version} accepted", "the patient"
                )
            )
    return entries


def money(amount_minor: int, currency: str) -> str:
    digits = get_currency_precision(currency)
    return format_currency(amount_minor / 10**digits, currency, locale="en")


def _travel(referral: Referral, _actor: Actor, _tasks: list) -> list[Entry]:
    trip = trip_of(referral)
    if trip is None:
        return []
    lines = [f"Hotel: {trip.hotel_name}"] if trip.hotel_name else []
    lines.extend(
        f"Flight {f.direction}: {f.flight_number} {f.departure_airport}→{f.arrival_airport}"
        for f in trip.flights
    )
    entries = [
        Entry(
            "travel",
            trip.created_at,
            "Travel booked",
            lines=lines,
            patient_zone=trip.local_time_zone,
        )
    ]
    if trip.updated_at and trip.updated_at > trip.created_at:
        entries.append(Entry("travel", trip.updated_at, "Travel changed (latest change)"))
    for column, words in (
        ("admitted_at", "Admitted to hospital"),
        ("discharged_at", "Discharged from hospital"),
        ("departed_at", "Left for home"),
    ):
        if (moment := getattr(trip, column)) is not None:
            entries.append(Entry("travel", moment, words, patient_zone=trip.local_time_zone))
    return entries


def _check_in(referral: Referral, _actor: Actor, _tasks: list) -> list[Entry]:
    entries = []
    form = referral.procedure.check_in_form
    for check_in in check_ins_of(referral.id):
        if check_in.answered_at is None:
            continue
        answers = check_in.answers or {}
        lines = _answer_lines(form, answers)
        flag = None
        if check_in.alert != "none":
            reasons = assess(form, answers, None).reasons if check_in.alert == "red_flag" else ()
            flag = f"Alert: {check_in.alert.replace('_', ' ')}" + (
                f" ({', '.join(reasons)})" if reasons else ""
            )
        entries.append(
            Entry(
                "check_in",
                check_in.answered_at,
                f"Check-in answered: {check_in.label.replace('_', ' ')}",
                lines=lines,
                flag=flag,
                body=check_in.free_text,
            )
        )
    return entries


def _answer_lines(form: CheckInForm, answers: dict) -> list[str]:
    """Scores on one line, then each choice, then the questions answered yes, in the
    catalogue's order (an answer to a question the catalogue no longer asks: by its code)."""
    scores = [f"{q.name} {answers[q.code]}/10" for q in form.scores if q.code in answers]
    lines = [" · ".join(scores)] if scores else []
    if lines:
        lines[0] = lines[0][:1].upper() + lines[0][1:]
    for question in form.questions:
        if question.type == "choice" and answers.get(question.code):
            lines.append(
                f"{question.name.capitalize()}: {answers[question.code].replace('_', ' ')}"
            )
    yes = [q.name for q in form.questions if q.type == "yes_no" and answers.get(q.code) is True]
    if yes:
        lines.append("Yes: " + ", ".join(yes))
    known = {q.code for q in form.questions}
    lines.extend(f"{code}: {value}" for code, value in answers.items() if code not in known)
    return lines


def _task(_referral: Referral, _actor: Actor, tasks: list) -> list[Entry]:
    entries = []
    for task in tasks:
        lines = [f"{task.priority.capitalize()} · from {task.source}"]
        entries.append(
            Entry(
                "task",
                task.created_at,
                f"Task opened: {task.title}",
                lines=lines,
                status=task.status,
                body=task.detail or None,
            )
        )
        if task.completed_at:
            entries.append(
                Entry(
                    "task",
                    task.completed_at,
                    f"Task {task.status}: {task.title}",
                    status=task.status,
                )
            )
    return entries


def _audit(referral: Referral, _actor: Actor, _tasks: list) -> list[Entry]:
    return [
        Entry("audit", event.occurred_at, f"{event.action} by {event.actor_label}")
        for event in trail_of(referral.id, AUDIT_LIMIT)
    ]


_GATHER = {
    "stage": _stage,
    "message": _message,
    "reply": _message,  # one query reads both directions
    "document": _document,
    "review": _review,
    "plan": _plan,
    "travel": _travel,
    "check_in": _check_in,
    "task": _task,
    "note": _note,
    "audit": _audit,
}

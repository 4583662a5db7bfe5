"""A person's data as a machine-readable bundle (GDPR Art. 15 and 20, KVKK Art. 11): a ZIP
with `data.json` (every patient row linked as the same person, their referrals across
agencies with everything recorded about them) and the documents' files under
`documents/`. The ZIP is written while it is sent: the documents are read in chunks and
never held in memory whole.

The FHIR R4 bundle of each referral joins as `fhir/<reference>.json` (crm.fhir, as the
hospital's admin sees it).
"""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import or_, select

from crm.conversation.models import ConversationMessage
from crm.core.actors import Actor
from crm.core.db import utcnow
from crm.documents.models import Document
from crm.documents.storage import EncryptedStore
from crm.extensions import db
from crm.fhir.export import referral_bundle
from crm.followup.models import CheckIn
from crm.messaging.models import InboundMessage, OutboxMessage
from crm.patients.models import Patient
from crm.plans.models import TreatmentPlan
from crm.privacy import queries
from crm.referrals.models import Referral, ReferralNote
from crm.reviews.models import Review
from crm.travel.models import Trip

FORMAT = "crm.patient-export/1"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class BundleFile:
    name: str  # the path inside the ZIP
    chunks: Callable[[], Iterator[bytes]] | None = None  # a stored file, streamed
    content: bytes | None = None  # a small generated file


def stored_chunks(store: EncryptedStore, document: Document) -> Callable[[], Iterator[bytes]]:
    """The document's bytes as the patient gave them (decrypted as they stream, from the
    local folder or the bucket), opened only when the ZIP reaches them."""

    def read() -> Iterator[bytes]:
        yield from store.open(document.sha256, document.sealed)

    return read


@dataclass(frozen=True)
class Bundle:
    data: dict[str, Any]
    files: list[BundleFile]
    patient_ids: list[int]
    referral_ids: list[int]


# Who the FHIR bundle is built for: the hospital whole (every message and check-in).
EXPORTER = Actor("staff", None, "privacy export", role="admin")


def fhir_bundle_for(referral: Referral) -> dict[str, Any]:
    """The referral as a FHIR R4 Bundle (crm.fhir), as the hospital sees it whole."""
    return referral_bundle(referral, EXPORTER)


def _when(value: datetime | date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _patient(patient: Patient) -> dict[str, Any]:
    erasure = queries.erasure_of(patient.id)
    return {
        "id": patient.id,
        "given_name": patient.given_name,
        "family_name": patient.family_name,
        "date_of_birth": _when(patient.date_of_birth),
        "sex": patient.sex,
        "country": patient.country,
        "phone": patient.phone,
        "email": patient.email,
        "language": patient.language,
        "time_zone": patient.time_zone,
        "created_at": _when(patient.created_at),
        "consents": [
            {
                "channel": c.channel,
                "granted": c.granted,
                "recorded_at": _when(c.recorded_at),
                "source": c.source,
            }
            for c in patient.consents
        ],
        "erased_at": _when(erasure.erased_at) if erasure else None,
    }


def _rows(model, *where, order=None) -> list[Any]:
    return list(db.session.scalars(select(model).where(*where).order_by(order or model.id)))


def _messages_sent(referral: Referral) -> list[dict[str, Any]]:
    rows = _rows(
        OutboxMessage,
        OutboxMessage.referral_id == referral.id,
        OutboxMessage.audience == "patient",
        order=OutboxMessage.created_at,
    )
    return [
        {
            "id": m.id,
            "channel": m.channel,
            "kind": m.kind,
            "language": m.language,
            "to": m.to_address,
            "subject": m.subject,
            "body_text": m.body_text,
            "body_html": m.body_html,
            "status": m.status,
            "created_at": _when(m.created_at),
            "sent_at": _when(m.sent_at),
            "delivered_at": _when(m.delivered_at),
        }
        for m in rows
    ]


def _messages_received(referral: Referral) -> list[dict[str, Any]]:
    rows = _rows(
        InboundMessage, InboundMessage.referral_id == referral.id, order=InboundMessage.received_at
    )
    return [
        {
            "channel": m.channel,
            "from": m.from_address,
            "body": m.body,
            "classification": m.classification,
            "received_at": _when(m.received_at),
        }
        for m in rows
    ]


def _plan(plan: TreatmentPlan) -> dict[str, Any]:
    return {
        "version": plan.version,
        "status": plan.status,
        "procedure_code": plan.procedure_code,
        "hospital": plan.hospital,
        "surgeon": plan.surgeon,
        "currency": plan.currency,
        "total_minor": plan.total_minor,
        "deposit_minor": plan.deposit_minor,
        "valid_until": _when(plan.valid_until),
        "inclusions": plan.inclusions,
        "exclusions": plan.exclusions,
        "notes_for_patient": plan.notes_for_patient,
        "items": [
            {
                "kind": i.kind,
                "description": i.description,
                "quantity": i.quantity,
                "unit_price_minor": i.unit_price_minor,
            }
            for i in plan.items
        ],
        "created_at": _when(plan.created_at),
        "accepted_at": _when(plan.accepted_at),
        "acceptance": plan.acceptance,
        "consent": {
            "plan_version": plan.consent_plan_version,
            "language": plan.consent_language,
            "information_sha256": plan.consent_information_sha256,
            "information_text": plan.consent_information_text,
        }
        if plan.consent_plan_version is not None
        else None,
    }


def _trip(referral: Referral) -> dict[str, Any] | None:
    trip = db.session.scalar(select(Trip).where(Trip.referral_id == referral.id))
    if trip is None:
        return None
    return {
        "local_time_zone": trip.local_time_zone,
        **{
            name: _when(getattr(trip, name))
            for name in (
                "arrival_at",
                "admission_at",
                "discharge_at",
                "departure_at",
                "admitted_at",
                "discharged_at",
                "departed_at",
            )
        },
        "hotel_name": trip.hotel_name,
        "hotel_address": trip.hotel_address,
        "transfers": trip.transfers,
        "companion_name": trip.companion_name,
        "flights": [
            {
                "direction": f.direction,
                "flight_number": f.flight_number,
                "from": f.departure_airport,
                "departs_at": _when(f.departs_at),
                "to": f.arrival_airport,
                "arrives_at": _when(f.arrives_at),
            }
            for f in trip.flights
        ],
    }


def document_name(document: Document) -> str:
    return f"documents/{document.id}-{_UNSAFE.sub('_', document.filename)[:120]}"


def _referral(referral: Referral, documents: list[Document]) -> dict[str, Any]:
    return {
        "id": referral.id,
        "reference": referral.reference,
        "patient_id": referral.patient_id,
        "agency": referral.agency.name if referral.agency else None,
        "agency_reference": referral.agency_reference,
        "procedure": {"code": referral.procedure.code, "name": referral.procedure.name},
        "stage": referral.stage,
        "lost_reason": referral.lost_reason,
        "created_at": _when(referral.created_at),
        "intake": {
            "complaints": referral.complaints,
            "symptom_duration_weeks": referral.symptom_duration_weeks,
            "treatments_tried": referral.treatments_tried,
            "pain_score": referral.pain_score,
            "notes": referral.intake_notes,
        },
        "stage_history": [
            {
                "from": t.from_stage,
                "to": t.to_stage,
                "by": t.actor_label,
                "reason": t.reason,
                "note": t.note,
                "at": _when(t.occurred_at),
            }
            for t in referral.history
        ],
        "notes": [
            {"by": n.author_label, "body": n.body, "at": _when(n.created_at)}
            for n in _rows(ReferralNote, ReferralNote.referral_id == referral.id)
        ],
        "messages": {"sent": _messages_sent(referral), "received": _messages_received(referral)},
        "conversation": [
            {
                "direction": c.direction,
                "channel": c.channel,
                "body": c.body,
                "at": _when(c.created_at),
            }
            for c in _rows(
                ConversationMessage,
                ConversationMessage.referral_id == referral.id,
                order=ConversationMessage.created_at,
            )
        ],
        "reviews": [
            {
                "by": r.specialist_label,
                "decision": r.decision,
                "findings": r.findings,
                "risks_to_discuss": r.risks_to_discuss,
                "request_to_patient": r.request_to_patient,
                "at": _when(r.created_at),
            }
            for r in _rows(Review, Review.referral_id == referral.id)
        ],
        "check_ins": [
            {
                "label": c.label,
                "due_at": _when(c.due_at),
                "answered_at": _when(c.answered_at),
                "answers": c.answers,
                "free_text": c.free_text,
                "alert": c.alert,
            }
            for c in _rows(CheckIn, CheckIn.referral_id == referral.id, order=CheckIn.position)
        ],
        "plans": [
            _plan(p)
            for p in _rows(
                TreatmentPlan, TreatmentPlan.referral_id == referral.id, order=TreatmentPlan.version
            )
        ],
        "travel": _trip(referral),
        "documents": [
            {
                "kind": d.kind,
                "content_type": d.content_type,
                "filename": d.filename,
                "size_bytes": d.size_bytes,
                "sha256": d.sha256,
                "uploaded_by": d.uploaded_by_label,
                "uploaded_at": _when(d.created_at),
                "dicom_metadata": d.dicom_metadata,
                "file": document_name(d),
            }
            for d in documents
        ],
    }


def bundle_of(patient_id: int, store: EncryptedStore) -> Bundle:
    """Everything recorded about the person `patient_id` belongs to, and the files."""
    ids = queries.person_ids(patient_id)
    patients = _rows(Patient, Patient.id.in_(ids))
    referrals = queries.referrals_of(ids)
    referral_ids = [r.id for r in referrals]
    files: list[BundleFile] = []
    out: list[dict[str, Any]] = []
    for referral in referrals:
        documents = _rows(Document, Document.referral_id == referral.id, order=Document.created_at)
        files += [BundleFile(document_name(d), chunks=stored_chunks(store, d)) for d in documents]
        out.append(_referral(referral, documents))
        content = json.dumps(fhir_bundle_for(referral), indent=2, ensure_ascii=False).encode()
        files.append(BundleFile(f"fhir/{referral.reference}.json", content=content))
    stray = _rows(  # replies we could not tie to a referral, matched to the person
        InboundMessage,
        InboundMessage.patient_id.in_(ids),
        or_(InboundMessage.referral_id.is_(None), InboundMessage.referral_id.not_in(referral_ids)),
    )
    data = {
        "format": FORMAT,
        "exported_at": _when(utcnow()),
        "patients": [_patient(p) for p in patients],
        "referrals": out,
        "messages_received_without_referral": [
            {"channel": m.channel, "body": m.body, "received_at": _when(m.received_at)}
            for m in stray
        ],
    }
    return Bundle(data, files, ids, referral_ids)


class _Pipe:
    """A write-only file for `zipfile` whose bytes are taken out as they are written."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        out, self.parts = b"".join(self.parts), []
        return out


def stream_zip(bundle: Bundle) -> Iterator[bytes]:
    """The ZIP, chunk by chunk: data.json first, then each file read `CHUNK` at a time.
    A stored file that is missing is listed in `missing.txt` instead of failing the
    download halfway."""
    pipe = _Pipe()
    missing: list[str] = []
    with zipfile.ZipFile(pipe, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        body = json.dumps(bundle.data, indent=2, ensure_ascii=False, sort_keys=True)
        archive.writestr("data.json", body.encode())
        yield pipe.take()
        for item in bundle.files:
            if item.content is not None:
                archive.writestr(item.name, item.content)
                yield pipe.take()
                continue
            chunks = item.chunks()  # type: ignore[misc]
            try:
                first = next(chunks, b"")
            except FileNotFoundError:
                missing.append(item.name)
                continue
            with archive.open(item.name, "w", force_zip64=True) as target:
                target.write(first)
                for chunk in chunks:
                    target.write(chunk)
                    yield pipe.take()
            yield pipe.take()
        if missing:
            archive.writestr("missing.txt", "\n".join(missing) + "\n")
    yield pipe.take()

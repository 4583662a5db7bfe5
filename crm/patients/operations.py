"""Creating patients and changing their contact details and consent."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError

from crm.core import audit
from crm.core.actors import Actor
from crm.core.db import utcnow
from crm.core.errors import ValidationFailed
from crm.core.events import publish
from crm.patients.events import ConsentChanged, ContactChanged
from crm.patients.models import CHANNELS, Patient, PatientConsent
from crm.patients.validation import normalise_phone

_CONTACT_FIELDS = ("phone", "email", "language", "time_zone")


def create_patient(data: dict[str, Any], actor: Actor, agency_id: int | None) -> Patient:
    fields = {k: v for k, v in data.items() if k != "consents"}
    patient = Patient(agency_id=agency_id, **fields)
    _apply_consents(patient, data.get("consents") or {}, actor)
    return patient


def update_contact(patient: Patient, data: dict[str, Any], actor: Actor, referral_id: int) -> None:
    changed = sorted(name for name in _CONTACT_FIELDS if name in data)
    if data.get("phone") and not data["phone"].startswith("+"):
        try:
            data = {**data, "phone": normalise_phone(data["phone"], patient.country)}
        except ValidationError as exc:
            raise ValidationFailed({"phone": exc.messages[0]}) from exc
    reachable = {name: data.get(name, getattr(patient, name)) for name in ("phone", "email")}
    if not any(reachable.values()):
        raise ValidationFailed({"phone": "give a phone number or an email address"})
    for name in changed:
        setattr(patient, name, data[name])
    consent_changes = _apply_consents(patient, data.get("consents") or {}, actor)
    audit.record(
        actor,
        "patient.contact_update",
        referral_id,
        patient_id=patient.id,
        fields=changed,
        consents=consent_changes,
    )
    if changed:
        publish(ContactChanged(patient, referral_id, tuple(changed), actor))


def set_consent(patient: Patient, channel: str, granted: bool, source: str) -> bool:
    """Record consent for one channel; returns whether anything changed."""
    current = patient.consent_for(channel)
    if current is None:
        patient.consents.append(PatientConsent(channel=channel, granted=granted, source=source))
    elif current.granted == granted:
        return False
    else:
        current.granted, current.source, current.recorded_at = granted, source, utcnow()
    publish(ConsentChanged(patient, channel, granted, source))
    return True


def _apply_consents(patient: Patient, consents: dict[str, Any], actor: Actor) -> dict[str, bool]:
    source = consents.get("source") or f"{actor.kind}:{actor.label}"
    changes = {}
    for channel in CHANNELS:
        if channel in consents and set_consent(patient, channel, consents[channel], source):
            changes[channel] = consents[channel]
    return changes

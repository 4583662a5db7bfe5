"""Creating patients and changing their contact details and consent."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError
from sqlalchemy import select

from crm.core import audit
from crm.core.actors import Actor
from crm.core.db import utcnow
from crm.core.errors import ValidationFailed
from crm.core.events import publish
from crm.extensions import db
from crm.patients import consent_sources
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


def set_own_consent(
    patient: Patient,
    channel: str,
    granted: bool,
    source: str,
    actor: Actor,
    referral_id: int | None = None,
) -> bool:
    """A choice the patient made themselves (the unsubscribe page, their private page):
    recorded with its source, which only `consent_sources` words, and audited as the
    patient. It may lift their own earlier withdrawal: that is theirs to lift. `patient` is
    the row to act on (`survivors([...], lock=True)`, as every consent change from outside
    takes it)."""
    if not consent_sources.by_the_patient(source):
        raise ValueError(f"{source!r} is not a source of the patient's own")
    if not set_consent(patient, channel, granted, source):
        return False
    audit.record(actor, f"consent.{channel}", referral_id, granted=granted, source=source)
    return True


def _apply_consents(patient: Patient, consents: dict[str, Any], actor: Actor) -> dict[str, bool]:
    given = consents.get("source")
    if consent_sources.by_the_patient(given):
        raise ValidationFailed(
            {"consents.source": "this wording is kept for the patient's own replies and links"}
        )
    source = given or f"{actor.kind}:{actor.label}"
    for channel in CHANNELS:
        if consents.get(channel) is True:
            _may_lift(patient.consent_for(channel), channel, actor, given)
    changes = {}
    for channel in CHANNELS:
        if channel in consents and set_consent(patient, channel, consents[channel], source):
            changes[channel] = consents[channel]
    return changes


def _may_lift(current: PatientConsent | None, channel: str, actor: Actor, given: str | None):
    """A withdrawal the patient made themselves (crm.patients.consent_sources) is lifted by
    the patient, or by hospital staff who say why; an agency never lifts it."""
    if current is None or current.granted or not consent_sources.by_the_patient(current.source):
        return
    when = f"{current.source}, {current.recorded_at:%Y-%m-%d}"
    if not actor.is_staff:
        raise ValidationFailed(
            {
                f"consents.{channel}": f"the patient withdrew it themselves ({when}); only the"
                " patient can give it again (a START reply, their private page, the"
                " unsubscribe page), or the hospital at their request"
            }
        )
    if not given:
        raise ValidationFailed(
            {
                "consents.source": f"the patient withdrew {channel} themselves ({when}): say"
                " how they asked to be written to again"
            }
        )


def _rows(ids: set[int], lock: bool) -> list[Patient]:
    statement = select(Patient).where(Patient.id.in_(ids)).order_by(Patient.id)
    if lock:
        statement = statement.with_for_update()
    return list(db.session.scalars(statement.execution_options(populate_existing=True)))


def survivors(patients: list[Patient], *, lock: bool = False) -> list[Patient]:
    """The rows to act on for these patients, each once: a merged one (a tombstone, see
    `crm/merges`) replaced by the patient it was merged into. `lock`: every row involved
    locked FOR UPDATE in id order (as a merge locks them) and read fresh, so a consent
    change either waits for a merge in progress and lands on its survivor, or is seen by
    it."""
    if not patients:
        return []
    ids = {p.id for p in patients} | {p.merged_into_id for p in patients if p.merged_into_id}
    rows = _rows(ids, lock)
    late = {p.merged_into_id for p in rows if p.merged_into_id and p.merged_into_id not in ids}
    if late:  # merged while we waited for the lock
        rows += _rows(late, lock)
    by_id = {p.id: p for p in rows}
    chosen = sorted({p.merged_into_id or p.id for p in rows if p.id in {q.id for q in patients}})
    found = [by_id[pid] for pid in chosen if pid in by_id]
    for patient in found:
        db.session.expire(patient, ["consents"])
    return found

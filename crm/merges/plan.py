"""What a merge would do, read before anything changes: the console's confirmation shows
it, the API's preview answers it, and the operation applies exactly this.

**Who survives.** The patient already known (the match's `matched_patient`, the earlier
row, whose referral came first) survives; the new referral's patient (`patient`) is merged
into it and stays as a tombstone (`merged_into_id`).

**Refused** (409 `merge-refused`, `refusal` one word) when:
- `decided`: the match is not open (linked, dismissed, or merged already);
- `not_likely`: the match is not a likely one (exact ones were linked on arrival);
- `already_merged`: either patient was merged already (into anyone);
- `erased`: either patient was erased (pseudonymised): there is nothing true to merge;
- `legal_hold`: a hold is in force on one person and not the other (a hold on a row covers
  every row linked to it, as for an erasure): a merge would carry held data out from under
  its hold, or put unheld data under one. Both held (or neither) is fine: every hold moves
  to the survivor and keeps applying.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import select

from crm.core.errors import Conflict
from crm.duplicates.models import DuplicateMatch
from crm.extensions import db
from crm.merges import rules
from crm.patients.models import Patient, PatientConsent
from crm.privacy.models import LegalHold, PatientErasure
from crm.privacy.queries import holds_in_force, person_ids
from crm.referrals.models import Referral


class MergeRefused(Conflict):
    """409: these two rows may not be merged now; `refusal` says why in one word."""

    code, title = "merge-refused", "Merge refused"


@dataclass
class MergePlan:
    match: DuplicateMatch
    survivor: Patient
    merged: Patient
    refusal: MergeRefused | None = None
    filled: dict[str, str | date] = field(default_factory=dict)
    conflicts: list[str] = field(default_factory=list)
    consents: list[rules.ConsentOutcome] = field(default_factory=list)
    referrals: list[Referral] = field(default_factory=list)
    holds: list[LegalHold] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """The audit's and the event's record: field names and outcomes, no contact data."""
        return {
            "match_id": self.match.id,
            "survivor_id": self.survivor.id,
            "merged_id": self.merged.id,
            "referral_ids": [r.id for r in self.referrals],
            "filled": sorted(self.filled),
            "conflicts": self.conflicts,
            "consents": [c.as_json() for c in self.consents],
            "holds_moved": [h.id for h in self.holds],
        }


def lock_patients(match: DuplicateMatch) -> tuple[Patient, Patient]:
    """Both patients locked (FOR UPDATE, lower id first: two merges never deadlock) and
    read fresh, then their consent rows locked: a STOP arriving meanwhile waits for the
    merge, or the merge waits for it and sees it. (SQLite emits no FOR UPDATE; its single
    writer serialises the merges.)"""
    ids = sorted({match.patient_id, match.matched_patient_id})
    fresh = {"populate_existing": True}
    rows = db.session.scalars(
        select(Patient)
        .where(Patient.id.in_(ids))
        .order_by(Patient.id)
        .with_for_update()
        .execution_options(**fresh)
    )
    found = {p.id: p for p in rows}
    db.session.scalars(
        select(PatientConsent)
        .where(PatientConsent.patient_id.in_(ids))
        .order_by(PatientConsent.id)
        .with_for_update()
        .execution_options(**fresh)
    ).all()
    for patient in found.values():
        db.session.expire(patient, ["consents"])  # read again, with the rows just locked
    return found[match.matched_patient_id], found[match.patient_id]


def _refusal(match: DuplicateMatch, survivor: Patient, merged: Patient) -> MergeRefused | None:
    if match.status != "open":
        return MergeRefused(f"this match is already {match.status}", refusal="decided")
    if match.kind != "likely":
        return MergeRefused("only a likely match is merged", refusal="not_likely")
    for patient in (survivor, merged):
        if patient.merged_into_id is not None:
            return MergeRefused(
                f"patient #{patient.id} was merged into #{patient.merged_into_id} already",
                refusal="already_merged",
            )
    erased = db.session.scalars(
        select(PatientErasure.patient_id).where(
            PatientErasure.patient_id.in_([survivor.id, merged.id])
        )
    ).all()
    if erased:
        return MergeRefused(
            f"patient #{min(erased)} was erased (pseudonymised): nothing to merge",
            refusal="erased",
        )
    held = [bool(holds_in_force(person_ids(p.id))) for p in (survivor, merged)]
    if held[0] != held[1]:
        one = survivor if held[0] else merged
        return MergeRefused(
            f"a legal hold is in force on patient #{one.id} (or a record linked to it) and"
            " not on the other: a manager lifts it, or sets one on both, first",
            refusal="legal_hold",
        )
    return None


def _fact(consent: PatientConsent | None, origin: str) -> rules.ConsentFact | None:
    if consent is None:
        return None
    return rules.ConsentFact(consent.granted, consent.recorded_at, consent.source, origin)


def _consents(survivor: Patient, merged: Patient, filled: dict) -> list[rules.ConsentOutcome]:
    outcomes = []
    for channel in rules.CHANNELS:
        theirs = rules.address(merged, channel)
        same = theirs is not None and theirs == rules.address(survivor, channel, filled)
        outcomes.append(
            rules.combine_consent(
                channel,
                _fact(survivor.consent_for(channel), "survivor"),
                _fact(merged.consent_for(channel), "merged"),
                same,
            )
        )
    return outcomes


def plan(match: DuplicateMatch, survivor: Patient, merged: Patient) -> MergePlan:
    """Everything the merge would do, or why it is refused (`refusal`); changes nothing."""
    found = MergePlan(match, survivor, merged, refusal=_refusal(match, survivor, merged))
    found.filled = rules.fill_in(survivor, merged)
    found.conflicts = rules.conflicts(survivor, merged)
    found.consents = _consents(survivor, merged, found.filled)
    found.referrals = list(
        db.session.scalars(
            select(Referral).where(Referral.patient_id == merged.id).order_by(Referral.id)
        )
    )
    found.holds = list(
        db.session.scalars(
            select(LegalHold).where(LegalHold.patient_id == merged.id).order_by(LegalHold.id)
        )
    )
    return found


def preview(match: DuplicateMatch) -> MergePlan:
    """The plan for a page or the API's GET, without locks."""
    return plan(match, match.matched_patient, match.patient)

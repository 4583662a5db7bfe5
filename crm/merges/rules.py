"""The merge's two pure rules: what consent the surviving patient keeps per channel, and
how the contact fields of two rows of one person come together. No database here: the
plan (`plan.py`) feeds them facts and the operation applies what they decide.

**Consent, the most restrictive wins, per channel** (sms, whatsapp, email):
1. A withdrawal (a STOP, an opt-out, a carrier's block) on *either* row counts, whatever
   address it was given for: the person said no.
2. A grant counts only when it is valid for the survivor: it is the survivor's own, or it
   is the merged row's and was given for the very address the survivor is now reached at
   on that channel (the same phone for SMS and WhatsApp, the same email). A yes given for
   another number does not let us write to this one.
3. The result is *granted* only when a counting grant was recorded strictly later than
   every withdrawal on either row (the person came back: START, a new form); otherwise a
   withdrawal stands as *withdrawn*. A tie goes to the withdrawal. When the latest
   withdrawal is one the patient made themselves (a STOP, the unsubscribe link, a carrier's
   block, a channel turned off on their page: `crm.patients.consent_sources`), only the
   patient's own later grant lifts it (START, "Keep receiving emails" on the unsubscribe
   page, the channel turned on on their private page): another row's form, sent by an
   agency after the STOP, does not.
4. No withdrawal and no counting grant: *no consent* (nobody is written to).
The winning fact is kept with its own time and source, so the record still says when and
how the person decided.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from crm.patients.consent_sources import by_the_patient

CHANNELS = ("sms", "whatsapp", "email")
ADDRESS_OF = {"sms": "phone", "whatsapp": "phone", "email": "email"}
# Filled in from the merged row when the survivor has none ("unknown" sex counts as none).
FILLABLE = ("phone", "email", "date_of_birth", "sex")
# Compared and, when they differ, named as conflicts (the survivor's value stays).
COMPARED = (
    "given_name",
    "family_name",
    "date_of_birth",
    "sex",
    "country",
    "phone",
    "email",
    "language",
    "time_zone",
)
EMPTY: dict[str, Any] = {"sex": "unknown"}


@dataclass(frozen=True)
class ConsentFact:
    """One row's consent for one channel: granted or withdrawn, when, how, and whose."""

    granted: bool
    recorded_at: datetime
    source: str
    origin: str  # "survivor" or "merged"


@dataclass(frozen=True)
class ConsentOutcome:
    channel: str
    survivor: ConsentFact | None
    merged: ConsentFact | None
    result: ConsentFact | None  # None: no consent on record
    reason: str  # one word, see REASONS

    @property
    def granted(self) -> bool:
        return bool(self.result and self.result.granted)

    @property
    def words(self) -> str:
        return REASONS[self.reason]

    def as_json(self) -> dict[str, Any]:
        def fact(found: ConsentFact | None) -> bool | None:
            return None if found is None else found.granted

        return {
            "channel": self.channel,
            "survivor": fact(self.survivor),
            "merged": fact(self.merged),
            "result": fact(self.result),
            "reason": self.reason,
        }


REASONS = {
    "none": "no consent on either row: nobody is written to on this channel",
    "granted": "granted, and no withdrawal on either row",
    "granted_later": "granted again after every withdrawal on either row",
    "withdrawn": "withdrawn on a row, and no later grant valid for the survivor: stays withdrawn",
    "other_address": (
        "the merged row's grant was for another address than the survivor's: not carried over"
    ),
}


def combine_consent(
    channel: str,
    survivor: ConsentFact | None,
    merged: ConsentFact | None,
    same_address: bool,
) -> ConsentOutcome:
    """Rule 1-4 above, for one channel. `same_address`: the merged row's address on this
    channel is the survivor's (after the fill-in)."""
    facts = [f for f in (survivor, merged) if f is not None]
    withdrawals = [f for f in facts if not f.granted]
    grants = [f for f in facts if f.granted and (f.origin == "survivor" or same_address)]
    dropped = merged is not None and merged.granted and not same_address

    def outcome(result: ConsentFact | None, reason: str) -> ConsentOutcome:
        return ConsentOutcome(channel, survivor, merged, result, reason)

    if withdrawals:
        last_no = max(withdrawals, key=lambda f: f.recorded_at)
        later = [g for g in grants if g.recorded_at > last_no.recorded_at]
        if by_the_patient(last_no.source):  # rule 3: only the patient lifts their own no
            later = [g for g in later if by_the_patient(g.source)]
        if later:
            return outcome(max(later, key=lambda f: f.recorded_at), "granted_later")
        return outcome(last_no, "withdrawn")
    if grants:
        return outcome(survivor if survivor in grants else grants[0], "granted")
    return outcome(None, "other_address" if dropped else "none")


def _value(row: Any, name: str) -> Any:
    value = getattr(row, name)
    if value is None or value == "" or EMPTY.get(name) == value:
        return None
    return value


def _same(name: str, one: Any, other: Any) -> bool:
    if name == "email":
        return str(one).lower() == str(other).lower()
    return one == other


def fill_in(survivor: Any, merged: Any) -> dict[str, str | date]:
    """The survivor's missing fields the merged row has: field -> the value to fill in."""
    filled = {}
    for name in FILLABLE:
        if _value(survivor, name) is None and _value(merged, name) is not None:
            filled[name] = _value(merged, name)
    return filled


def conflicts(survivor: Any, merged: Any) -> list[str]:
    """Fields both rows have, with different values: the survivor's stays, the other's is
    kept on the tombstone and named in the audit (never silently lost)."""
    return [
        name
        for name in COMPARED
        if _value(survivor, name) is not None
        and _value(merged, name) is not None
        and not _same(name, _value(survivor, name), _value(merged, name))
    ]


def address(patient: Any, channel: str, filled: dict[str, Any] | None = None) -> str | None:
    """The patient's address on a channel (after a fill-in), email folded."""
    name = ADDRESS_OF[channel]
    value = (filled or {}).get(name) or getattr(patient, name)
    if not value:
        return None
    return value.lower() if name == "email" else value

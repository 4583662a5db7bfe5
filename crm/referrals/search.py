"""Search: one normalised text per referral, so one trigram index answers every search.

`search_text` holds the patient's names and email folded (lower case, accents removed
from Latin, Greek and Cyrillic letters), the digits of the phone as stored (E.164) and as
dialled inside the patient's country, and the agency reference, separated by spaces. The
operations that create a referral or change its patient's contact details keep it, in the
same transaction. A search folds its text the same way, so `Müller` finds `muller`.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

import phonenumbers
from sqlalchemy import ColumnElement, and_, false, or_, select

from crm.extensions import db
from crm.referrals.models import Referral
from crm.referrals.references import referral_id_in

# Letters NFD does not split into a base and a mark.
_LETTERS = str.maketrans(
    {"ø": "o", "ł": "l", "đ": "d", "ħ": "h", "\u0131": "i", "ŧ": "t", "æ": "ae", "œ": "oe"}
)
_PHONE_LIKE = re.compile(r"[+\d\s().\-/]+")


def _drops_marks(character: str) -> bool:
    """Latin, Greek and Cyrillic letters lose their accents; other scripts keep their
    marks (a Devanagari vowel sign or virama is part of the word, not an accent)."""
    code = ord(character)
    return code < 0x0530 or 0x1E00 <= code <= 0x1FFF


def fold(text: str) -> str:
    """Lower case without accents: `Müller` -> `muller`, `JOSÉ` -> `jose`, `Øre` -> `ore`."""
    folded = []
    for character in unicodedata.normalize("NFKC", text).casefold():
        decomposed = unicodedata.normalize("NFD", character)
        if _drops_marks(decomposed[0]):
            character = "".join(c for c in decomposed if not unicodedata.combining(c))
        folded.append(character)
    return "".join(folded).translate(_LETTERS)


def _digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


def phone_forms(phone: str | None) -> list[str]:
    """The digits of an E.164 phone, and of the same number dialled in its own country."""
    if not phone:
        return []
    forms = [_digits(phone)]
    try:
        number = phonenumbers.parse(phone)
    except phonenumbers.NumberParseException:
        return forms
    national = _digits(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL))
    return forms + ([national] if national and national not in forms else [])


def search_text_of(referral: Referral) -> str:
    patient = referral.patient
    parts = [
        fold(patient.given_name),
        fold(patient.family_name),
        fold(patient.email or ""),
        *phone_forms(patient.phone),
        fold(referral.agency_reference or ""),
    ]
    return " ".join(part for part in parts if part)


def refresh_search_text(referral: Referral) -> None:
    referral.search_text = search_text_of(referral)


def refresh_for_patient(patient_id: int) -> None:
    """After a patient's contact details changed: every referral of theirs."""
    for referral in db.session.scalars(select(Referral).where(Referral.patient_id == patient_id)):
        refresh_search_text(referral)


def _contains(term: str) -> ColumnElement[bool]:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return Referral.search_text.like(f"%{escaped}%", escape="\\")


def matches(text: str) -> ColumnElement[bool]:
    """Referrals the search text finds: by hospital reference (only that, when it has its
    R), phone digits in any formatting, or else every word of it in the names, email or
    agency reference."""
    found: list[Any] = []
    referral_id, surely = referral_id_in(text)
    if surely:  # `R13` is the hospital's reference, not `r13` inside a name or a code
        return Referral.id == referral_id
    if referral_id is not None:
        found.append(Referral.id == referral_id)
    digits = _digits(text.replace("(0)", ""))  # +49 (0)151 ... is +49 151 ...
    if _PHONE_LIKE.fullmatch(text) and len(digits) >= 2:
        found.append(_contains(digits))
        if digits.startswith("00") and len(digits) > 4:  # 0049 151 ... is +49 151 ...
            found.append(_contains(digits[2:]))
    else:
        terms = fold(text).split()
        if terms:
            found.append(and_(*(_contains(term) for term in terms)))
    return or_(*found) if found else false()

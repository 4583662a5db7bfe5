"""Two patients who are likely the same person: one open match, built through the real
submit path (the duplicate check runs as it does for an agency's POST)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from crm.duplicates.models import DuplicateMatch
from crm.referrals.models import Referral
from tests.factories import Caller, Factory

_numbers = itertools.count(5000)


@dataclass
class Pair:
    known: Referral  # the earlier referral: its patient survives
    new: Referral  # the later one: its patient is merged
    match: DuplicateMatch


def patient(**fields: Any) -> dict[str, Any]:
    """A patient sharing nothing with any other unless the test says so."""
    n = next(_numbers)
    return {
        "given_name": f"Given{n}",
        "family_name": f"Family{n}",
        "date_of_birth": f"19{n % 80 + 10}-0{n % 9 + 1}-1{n % 9}",
        "phone": f"+49151{70000000 + n}",
        "email": f"merge{n}@patient.example",
        "consents": {"sms": True, "email": True, "source": "signed intake form"},
        **fields,
    }


def likely_pair(
    factory: Factory,
    first: Caller,
    second: Caller,
    known: dict[str, Any] | None = None,
    new: dict[str, Any] | None = None,
) -> Pair:
    """The same phone, different names and birth dates (a likely match, not exact), unless
    the test gives the fields."""
    phone = f"+49151{80000000 + next(_numbers)}"
    known_fields = patient(**{"phone": phone, **(known or {})})
    new_fields = patient(**{"phone": phone, **(new or {})})
    earlier = factory.referral(first, patient=known_fields)
    later = factory.referral(second, patient=new_fields)
    match = factory.session.scalar(
        select(DuplicateMatch).where(DuplicateMatch.referral_id == later.id)
    )
    assert match is not None and match.status == "open", "expected an open likely match"
    return Pair(earlier, later, match)

"""Helpers for the duplicate tests: a patient given exactly, with nothing shared by default."""

from __future__ import annotations

import itertools
from typing import Any

from tests.factories import referral_payload

_numbers = itertools.count(1000)


def person(**patient: Any) -> dict[str, Any]:
    """A referral payload whose patient shares no phone, email or name with any other,
    unless the test says so."""
    n = next(_numbers)
    fields = {
        "given_name": f"Given{n}",
        "family_name": f"Family{n}",
        "date_of_birth": f"19{n % 90 + 10}-0{n % 9 + 1}-1{n % 9}",
        "phone": f"+49151{n:08d}",
        "email": f"person{n}@patient.example",
    }
    return referral_payload(patient={**fields, **patient})

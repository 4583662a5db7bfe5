"""The hospital's own reference for a referral, `R-000013`: the one patients are told."""

from __future__ import annotations

import re

MAX_ROW_ID = 2**31 - 1  # ids are `integer` columns

# `R-000013`, `r-13`, `R 13`, `R13`, `000013`, `13`: an optional R, then the number.
_REFERENCE = re.compile(r"\s*(r\s*[-#.]?\s*)?0*(\d{1,10})\s*", re.IGNORECASE)


def hospital_reference(referral_id: int) -> str:
    return f"R-{referral_id:06d}"


def referral_id_in(text: str) -> tuple[int | None, bool]:
    """The referral id a search text may name as a hospital reference, and whether it
    surely does (it has the R: `R13`, `r-13`; `000013` may as well be part of a phone)."""
    match = _REFERENCE.fullmatch(text)
    if match is None:
        return None, False
    number = int(match.group(2))
    if not 0 < number <= MAX_ROW_ID:
        return None, False
    return number, match.group(1) is not None

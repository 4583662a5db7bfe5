"""SMS encoding and segment counting, known before a message is handed to a provider.

GSM 03.38 (GSM-7): 160 septets fit one segment; a concatenated message carries a
6-octet user-data header, leaving 153 septets per segment. Characters from the
extension table (``^ { } \\ [ ] ~ | €`` and form feed) are sent as ESC + char and
cost two septets; an escape pair is never split across two segments.

UCS-2 (any character outside GSM-7): 70 UTF-16 code units in one segment, 67 per
segment when concatenated. Characters outside the Basic Multilingual Plane (most
emoji) are a surrogate pair, two units, and a pair is never split either.

The counts follow what carriers and Twilio bill; Twilio's optional "smart encoding"
(replacing curly quotes and the like) is not modelled: we count what we send.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")

SINGLE_LIMIT = {"gsm7": 160, "ucs2": 70}
MULTI_LIMIT = {"gsm7": 153, "ucs2": 67}


class Encoding(StrEnum):
    GSM7 = "gsm7"
    UCS2 = "ucs2"


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    """How a body travels: its encoding, its length in units, and the segments billed.

    ``units`` are septets for GSM-7 and UTF-16 code units for UCS-2. An empty body
    has zero segments (providers reject it anyway).
    """

    encoding: Encoding
    units: int
    segments: int

    @property
    def per_segment(self) -> int:
        """Units available in each segment at this length (160/153 or 70/67)."""
        limits = SINGLE_LIMIT if self.segments <= 1 else MULTI_LIMIT
        return limits[self.encoding.value]


def is_gsm7(text: str) -> bool:
    """True when every character is in the GSM-7 basic or extension table."""
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text)


def _unit_costs(text: str, encoding: Encoding) -> list[int]:
    if encoding is Encoding.GSM7:
        return [2 if ch in GSM7_EXTENSION else 1 for ch in text]
    return [2 if ord(ch) > 0xFFFF else 1 for ch in text]


def _pack(costs: list[int], limit: int) -> int:
    """Greedy packing: segments needed when no character's units may be split."""
    segments, used = 1, 0
    for cost in costs:
        if used + cost > limit:
            segments, used = segments + 1, 0
        used += cost
    return segments


def analyse(text: str) -> SegmentInfo:
    """Encoding, length in units and segment count of an SMS body."""
    encoding = Encoding.GSM7 if is_gsm7(text) else Encoding.UCS2
    costs = _unit_costs(text, encoding)
    units = sum(costs)
    if units == 0:
        return SegmentInfo(encoding, 0, 0)
    if units <= SINGLE_LIMIT[encoding.value]:
        return SegmentInfo(encoding, units, 1)
    return SegmentInfo(encoding, units, _pack(costs, MULTI_LIMIT[encoding.value]))


def segment_count(text: str) -> int:
    """Number of segments the body is billed as."""
    return analyse(text).segments

"""Inbound SMS classification: opt-out, opt-in, help, or a free-text reply.

A keyword is a message that is a single word once surrounding whitespace,
punctuation and symbols are removed, compared without regard to case, width or
accents (so ``stop``, `` Stop! ``, ``«STOP»``, full-width ``STOP`` (U+FF33...) and Turkish
``İNFO`` are keywords, while ``stop sending me these`` is a reply a person reads).
The lists follow the carrier/Twilio standard opt-out, opt-in and help keywords.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from enum import StrEnum


class InboundKind(StrEnum):
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"
    REPLY = "reply"


OPT_OUT_KEYWORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
)
OPT_IN_KEYWORDS = frozenset({"START", "YES", "UNSTOP"})
HELP_KEYWORDS = frozenset({"HELP", "INFO"})

_KEYWORDS: dict[str, InboundKind] = {
    **dict.fromkeys(OPT_OUT_KEYWORDS, InboundKind.OPT_OUT),
    **dict.fromkeys(OPT_IN_KEYWORDS, InboundKind.OPT_IN),
    **dict.fromkeys(HELP_KEYWORDS, InboundKind.HELP),
}


@dataclass(frozen=True, slots=True)
class Classified:
    """The kind of an inbound message and, for a keyword, the keyword matched."""

    kind: InboundKind
    keyword: str | None = None


def _is_edge_noise(ch: str) -> bool:
    """Whitespace, punctuation, symbols (emoji included) and control characters."""
    return unicodedata.category(ch)[0] in "ZPSC"


def normalise_keyword(body: str) -> str | None:
    """The upper-cased bare word ``body`` consists of, or None if it is not one word."""
    folded = "".join(
        ch for ch in unicodedata.normalize("NFKD", body) if not unicodedata.combining(ch)
    )
    start, end = 0, len(folded)
    while start < end and _is_edge_noise(folded[start]):
        start += 1
    while end > start and _is_edge_noise(folded[end - 1]):
        end -= 1
    word = folded[start:end]
    if not word or not all(ch.isalpha() for ch in word):
        return None
    return word.upper()


def classify(body: str) -> Classified:
    """Classify an inbound SMS body."""
    word = normalise_keyword(body or "")
    kind = _KEYWORDS.get(word) if word else None
    if kind is None:
        return Classified(InboundKind.REPLY)
    return Classified(kind, word)

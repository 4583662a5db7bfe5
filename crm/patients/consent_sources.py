"""How a consent change was made, read from its recorded source: by the patient themselves
(a keyword reply, the unsubscribe link and its "subscribe again" button, the carrier's
record of their STOP, their own choice on their private page) or by someone acting for
them (an agency's form, hospital staff).

The rule this serves: a withdrawal the patient made themselves is lifted only by the
patient (a START reply, "subscribe again" on the unsubscribe page, turning the channel on
on their private page), or by hospital staff who name why (the patient asked them); never
by an agency's request or a new submission's consents. Only this code writes the
patients' own sources: a caller's `consents.source` may not begin like one, however it
is cased, spaced or punctuated ("Patient-Page", " SMS  keyword").
"""

from __future__ import annotations

import re

UNSUBSCRIBE_LINK = "unsubscribe link"
SUBSCRIBED_AGAIN = "subscribed again (unsubscribe link)"
PATIENT_PAGE = "patient page"
CARRIER_OPT_OUT = "carrier opt-out (Twilio 21610)"
_KEYWORD = "{channel} keyword"
# The beginnings only this module writes (a source keeps details after them: a message id).
_BY_THE_PATIENT = (
    "sms keyword",
    "whatsapp keyword",
    UNSUBSCRIBE_LINK,
    "subscribed again",
    "carrier opt-out",
    PATIENT_PAGE,
)
_NOT_A_LETTER = re.compile(r"[\W_]+")


def keyword(channel: str, message_sid: str) -> str:
    """A keyword reply (STOP, START...) on a channel, with the provider's message id."""
    return f"{_KEYWORD.format(channel=channel)} ({message_sid})"


def _words(text: str) -> str:
    """Lower case, every run of spaces and punctuation one space: "Patient-Page!" and
    "patient page" read alike."""
    return _NOT_A_LETTER.sub(" ", text.casefold()).strip()


_PREFIXES = tuple(_words(prefix) for prefix in _BY_THE_PATIENT)


def by_the_patient(source: str | None) -> bool:
    """Whether this source is (or is worded like) one the patient made themselves."""
    return _words(source or "").startswith(_PREFIXES)

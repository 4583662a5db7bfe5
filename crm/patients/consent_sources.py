"""How a consent change was made, read from its recorded source: by the patient themselves
(a keyword reply, the unsubscribe link, the carrier's record of their STOP) or by someone
acting for them (an agency's form, hospital staff).

The rule this serves: a withdrawal the patient made themselves is lifted only by the
patient (a START reply), or by hospital staff who name why (the patient asked them); never
by an agency's request or a new submission's consents. Only this code writes the
patients' own sources: a caller's `consents.source` may not begin like one.
"""

from __future__ import annotations

UNSUBSCRIBE_LINK = "unsubscribe link"
CARRIER_OPT_OUT = "carrier opt-out (Twilio 21610)"
_KEYWORD = "{channel} keyword"
_BY_THE_PATIENT = ("sms keyword", "whatsapp keyword", UNSUBSCRIBE_LINK, "carrier opt-out")


def keyword(channel: str, message_sid: str) -> str:
    """A keyword reply (STOP, START...) on a channel, with the provider's message id."""
    return f"{_KEYWORD.format(channel=channel)} ({message_sid})"


def by_the_patient(source: str | None) -> bool:
    return (source or "").lower().startswith(_BY_THE_PATIENT)

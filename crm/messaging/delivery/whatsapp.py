"""How a WhatsApp message goes, decided when it is sent: free text or approved template.

The 24-hour session may close between the moment a message is written and the moment a
dispatcher claims it (quiet hours, a backoff, a busy queue), so the choice is made here,
per send, with the session read for the whole batch at once:
- the session is open: the message's own text goes as free text;
- it is closed and the kind has an approved template in the message's language (or
  English): the template goes by Content SID, filled from the message's allow-listed
  values (never a health detail);
- neither: it cannot go on WhatsApp (suppressed `no_whatsapp_template`, and its SMS twin
  is written when the rule allowed a fallback).
What was used is recorded on the row (`content_sid`, `content_variables`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from crm.messaging.composing.whatsapp_templates import WhatsAppTemplates
from crm.messaging.session import is_open


@dataclass(frozen=True, slots=True)
class WhatsAppSend:
    """Free text (no Content SID) or the approved template and its variables (JSON)."""

    content_sid: str | None = None
    content_variables: str | None = None

    @property
    def free_text(self) -> bool:
        return self.content_sid is None


FREE_TEXT = WhatsAppSend()


def decide(
    kind: str,
    language: str,
    values: Mapping[str, str] | None,
    last_inbound: datetime | None,
    now: datetime,
    templates: WhatsAppTemplates,
) -> WhatsAppSend | None:
    """How the message goes now, or None when it cannot go on WhatsApp at all."""
    if is_open(last_inbound, now):
        return FREE_TEXT
    template = templates.find(kind, language)
    if template is None:
        return None
    return WhatsAppSend(template.content_sid, template.content_variables(values or {}))

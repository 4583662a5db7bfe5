"""What the webhook dispatcher publishes: an endpoint was switched off (messaging emails
the agency, in the same transaction)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from crm.core.events import Event


@dataclass(frozen=True)
class WebhookEndpointDisabled(Event):
    """`reason` is in words for the agency: why, and how many attempts failed."""

    endpoint_id: int
    agency_id: int
    url: str
    reason: str
    disabled_at: datetime

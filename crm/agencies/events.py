"""What happens to an agency that others react to: one of its webhook endpoints was
switched off by the webhook dispatcher (messaging emails the agency, in the same
transaction). It lives here, not in crm.webhooks, so messaging can hear it without a
package loop (webhooks hears follow-up, which sends through messaging)."""

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

"""The event types an agency may subscribe to. A payload carries only what the agency
may see of its own referral: no clinical detail, no patient contact details.

Every body is `{"type": <name>, "version": <int>, "timestamp": <ISO 8601 UTC>, "data":
{...}}`; `version` changes when a type's `data` changes incompatibly.
"""

from __future__ import annotations

PAYLOAD_VERSION = 1

EVENT_TYPES: dict[str, str] = {
    "referral.stage_changed": "A referral moved to another stage of the pipeline.",
    "referral.attribution_changed": (
        "A coordinator found the patient already known: the referral is now (or no longer) "
        "`already_in_care` at the hospital."
    ),
    "review.decided": "The hospital's specialist reviewed the case: accepted or declined.",
    "plan.offered": "A treatment plan (or a new version of it) was offered to the patient.",
    "plan.accepted": "The patient accepted the treatment plan.",
    "document.requested": "The hospital asked for a document (for example the MRI).",
    "travel.booked": "The patient's trip was booked or changed.",
    "checkin.alert": (
        "A follow-up check-in raised an alert the hospital is handling (no clinical detail)."
    ),
}

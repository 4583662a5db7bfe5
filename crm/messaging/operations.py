from __future__ import annotations

import uuid
from typing import Any

from crm.core import audit
from crm.core.actors import Actor
from crm.core.errors import Conflict
from crm.messaging.composing.outbox import enqueue
from crm.messaging.models import OutboxMessage
from crm.referrals.models import Referral

MRI_WANTED_STAGES = frozenset({"enquiry", "awaiting_mri", "mri_review"})


def send_ad_hoc(referral: Referral, args: dict[str, Any], actor: Actor) -> list[OutboxMessage]:
    """A coordinator's own message, through the same consent, quiet-hour and cap rules.

    The SMS carries only "you have a new message, open your link"; the text goes by email.
    """
    result = enqueue(
        referral,
        kind="ad_hoc",
        audience="patient",
        channels=args["channels"],
        key=f"adhoc:{referral.id}:{uuid.uuid4().hex}",
        fallback=args["fallback"],
        extra={"subject": args["subject"], "message": args["message"]},
        over_cap="reject",
        stands=True,  # written by a person on purpose: it goes even if the referral moves
    )
    audit.record(actor, "message.ad_hoc", referral.id, outbox_ids=[m.id for m in result.messages])
    return result.messages


def request_mri(referral: Referral, actor: Actor) -> list[OutboxMessage]:
    """A coordinator asks the patient for the MRI (`mri_requested_patient`), by SMS and email
    as consent allows; the SMS says only that a document is needed, the email says which.
    Only while the MRI is what the case waits for (enquiry, awaiting MRI, MRI review)."""
    if referral.stage not in MRI_WANTED_STAGES:
        raise Conflict(f"the MRI is not asked for in stage {referral.stage}", stage=referral.stage)
    result = enqueue(
        referral,
        kind="mri_requested_patient",
        audience="patient",
        channels=["sms", "email"],
        key=f"mri-request:{referral.id}:{uuid.uuid4().hex}",
        fallback=False,
        over_cap="reject",
        stands=True,
    )
    audit.record(
        actor, "message.mri_request", referral.id, outbox_ids=[m.id for m in result.messages]
    )
    return result.messages

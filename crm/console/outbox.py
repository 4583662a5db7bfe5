"""The outbox: what did not go (failed, with the provider's error), what will not
(suppressed or cancelled, with the reason), what waits (held by a spend cap, quiet hours
or a retry backoff) and what is on its way, newest first, a page at a time; and a retry
for a failed or cap-held message (`crm.messaging.operations.retry_message`).

Coordinators and managers (an admin always), as POST /api/v1/referrals/<id>/messages.
Recipients are named, addresses masked (`+90*******67`); bodies stay on the referral page.
"""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for

from crm.auth.guards import current_actor
from crm.console.actions import attempt
from crm.console.auth import staff_page
from crm.console.views import console
from crm.messaging.operations import retry_message
from crm.messaging.queries import OUTBOX_TABS, outbox_page
from crm.referrals.queries import MAX_ROW_ID

ROLES = ("coordinator", "manager")
TAB_LABELS = {
    "failed": "Failed",
    "held": "Held",
    "suppressed": "Suppressed",
    "cancelled": "Cancelled",
    "queued": "Queued and sending",
    "all": "All",
}
OUTCOME_WORDS = {
    "requeued": "Queued again: the dispatcher sends it within a minute.",
    "already queued": "It is already queued: the dispatcher sends it within a minute.",
    "cancelled": (
        "Not sent: the referral has moved on from the stage this message was written for, "
        "so it is cancelled."
    ),
}


@console.get("/outbox")
@staff_page(*ROLES)
def outbox():
    tab = request.args.get("tab", "failed")
    if tab not in OUTBOX_TABS:
        tab = "failed"
    before = request.args.get("before", type=int)
    if before is not None and not 0 < before <= MAX_ROW_ID:
        before = None
    page = outbox_page(current_actor(), tab, before)  # audited
    return render_template("console/outbox.html", page=page, labels=TAB_LABELS, before=before)


@console.post("/outbox/<int:message_id>/retry")
@staff_page(*ROLES)
def outbox_retry(message_id: int):
    result = attempt(lambda: retry_message(message_id, current_actor()))
    if result is not None:
        category = "error" if result.outcome == "cancelled" else "message"
        flash(OUTCOME_WORDS[result.outcome], category)
    tab = request.form.get("tab")
    return redirect(url_for("console.outbox", tab=tab if tab in OUTBOX_TABS else None), 303)

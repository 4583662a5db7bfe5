"""The referral page's "Messages with the agency": the thread between the referral's agency
and the coordinators (`crm.agency_messages`), newest last, and a form to write to the
agency. Opening the page marks what the agency wrote as read for a coordinator or manager
(a specialist reads without marking); writing runs `post_message`, the operation behind
`POST /api/v1/referrals/{id}/agency-messages`. The text goes to the agency as typed."""

from __future__ import annotations

from typing import Any

from flask import flash, g, redirect, request, url_for

from crm.agency_messages import operations as agency_messages
from crm.agency_messages.queries import thread
from crm.auth.guards import current_actor
from crm.console.actions import ERROR, attempt_quietly, in_words
from crm.console.auth import staff_page
from crm.console.views import console
from crm.core.actors import Actor
from crm.referrals.models import Referral
from crm.referrals.queries import referral_for


def agency_thread_panel(referral: Referral, actor: Actor) -> dict[str, Any] | None:
    """The block's context, or None for a direct enquiry (no agency to write to)."""
    if referral.agency_id is None:
        return None
    messages = list(thread(referral.id))
    new_ids = {m.id for m in messages if m.direction == "from_agency" and m.read_at is None}
    may_write = agency_messages.may_write(actor)
    if may_write and new_ids:
        agency_messages.mark_read(referral, actor)
    return {
        "messages": messages,
        "new_ids": new_ids if may_write else set(),
        "unread": len(new_ids),
        "may_write": may_write,
        "max_body": agency_messages.MAX_BODY,
        "draft": g.get("agency_message_draft", ""),
        "error": g.get("agency_message_error"),
    }


@console.post("/referrals/<int:referral_id>/agency-messages")
@staff_page(*agency_messages.WRITERS)
def write_to_agency(referral_id: int):
    from crm.console.referral import referral as referral_page

    referral = referral_for(current_actor(), referral_id, for_update=True)
    typed = request.form.get("body", "")
    _, refused = attempt_quietly(
        lambda: agency_messages.post_message(referral, typed, current_actor())
    )
    if refused is not None:
        flash(in_words(refused), ERROR)
        g.agency_message_draft, g.agency_message_error = typed, in_words(refused)
        return referral_page(referral_id), 422
    flash("Message sent to the agency: they see it on the referral in their panel.")
    return redirect(url_for("console.referral", referral_id=referral_id) + "#agency-messages", 303)

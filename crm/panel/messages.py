"""The agency writes to the hospital about a referral, from its page: the agency thread's
own operation (`crm.agency_messages.operations.post_message`), the same as
`POST /api/v1/referrals/{id}/agency-messages`. A refusal (an empty message, too long)
comes back beside the form with the text kept (422)."""

from __future__ import annotations

from flask import flash, g, redirect, request, url_for

from crm.agency_messages.operations import post_message
from crm.auth.guards import current_actor
from crm.console.actions import attempt_quietly, in_words
from crm.panel.auth import agency_page
from crm.panel.referrals import referral_page
from crm.panel.views import panel
from crm.referrals.queries import referral_for


@panel.post("/referrals/<int:referral_id>/messages")
@agency_page
def write_message(referral_id: int):
    actor = current_actor()
    referral = referral_for(actor, referral_id, for_update=True)
    typed = request.form.get("body", "")
    _, refused = attempt_quietly(lambda: post_message(referral, typed, actor))
    if refused is not None:
        g.message_error, g.message_draft = in_words(refused), typed
        return referral_page(referral_id, 422)
    flash("Message sent: the hospital's coordinators see it on the referral.")
    return redirect(url_for("panel.referral", referral_id=referral_id) + "#messages", 303)

"""The referral page's conversation: the thread with the patient (page messages, SMS and
WhatsApp replies, answers), newest last, and the answer form.

Opening the referral page is opening the conversation: for a viewer who may answer
(coordinator, manager, admin) it marks what the patient wrote as read, audited
(`conversation.read`), after noting which messages were new to show them so. A specialist
reads the thread without marking anything. The answer runs `answer_patient`, the same
operation whatever the channel the patient wrote from; a refusal (an empty text, the
health-detail screen of an SMS) is said in words and the page comes back with the text
kept (422)."""

from __future__ import annotations

from typing import Any

from flask import flash, g, redirect, request, url_for

from crm.auth.guards import current_actor, role_allows
from crm.console.actions import ERROR, attempt_quietly, in_words
from crm.console.auth import staff_page
from crm.console.views import console
from crm.conversation import operations as conversation
from crm.conversation.queries import thread
from crm.core.actors import Actor
from crm.messaging.operations import MAX_SMS_TEXT
from crm.referrals.models import Referral
from crm.referrals.queries import referral_for

ANSWERERS = ("coordinator", "manager")  # as POST /referrals/{id}/messages
CHANNEL_WORDS = {
    "page": "on the private page",
    "sms": "by SMS",
    "whatsapp": "by WhatsApp",
    "email": "by email",
}


def conversation_panel(referral: Referral, actor: Actor) -> dict[str, Any]:
    """The thread as this viewer sees it, marked read when they may answer."""
    entries = thread(referral.id)
    may_answer = role_allows(actor, ANSWERERS)
    unread = sum(1 for entry in entries if entry.unread)
    if may_answer and unread:
        conversation.mark_read(referral, actor)
    return {
        "entries": entries,
        "unread": unread,
        "may_answer": may_answer,
        "channel": conversation.preferred_channel(referral) if may_answer else None,
        "channel_words": CHANNEL_WORDS,
        "max_body": conversation.MAX_BODY,
        "max_sms": MAX_SMS_TEXT,
        "draft": g.get("conversation_draft", ""),
        "sms_text": g.get("conversation_sms_text", False),
        "error": g.get("conversation_error"),
    }


@console.post("/referrals/<int:referral_id>/conversation")
@staff_page(*ANSWERERS)
def answer_patient(referral_id: int):
    from crm.console.referral import referral as referral_page

    referral = referral_for(current_actor(), referral_id, for_update=True)
    typed = request.form.get("message", "")
    sms_text = request.form.get("sms_text") == "on"
    _, refused = attempt_quietly(
        lambda: conversation.answer_patient(referral, typed, current_actor(), sms_text=sms_text)
    )
    if refused is not None:
        flash(in_words(refused), ERROR)  # at the top, and beside the form with the text kept
        g.conversation_draft, g.conversation_sms_text = typed, sms_text
        g.conversation_error = in_words(refused)
        return referral_page(referral_id), 422
    flash("Answer sent: the patient sees it on their page and is told.")
    return redirect(url_for("console.referral", referral_id=referral_id) + "#conversation", 303)

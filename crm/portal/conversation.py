"""The conversation on the patient's private page: the thread (newest last, times in the
patient's zone) and the form "Write to your coordinator" (`POST /p/<token>/messages`).

The page's words come from gettext in the patient's language. A refused message (empty,
too long, text the database cannot store, too many in an hour) comes back on the page with
the reason in those words and what was typed kept."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.dates import format_date, format_time, get_datetime_format
from flask import redirect, request, url_for
from flask_babel import gettext as _

from crm.conversation.operations import MAX_BODY, MessageRefused, post_patient_message
from crm.conversation.queries import thread
from crm.core.errors import DomainError, RateLimited, ValidationFailed
from crm.core.i18n import use_language
from crm.extensions import db
from crm.portal.views import _invalid, _page, _patient_actor, _referral, portal
from crm.referrals.models import Referral


def conversation_context(referral: Referral) -> dict[str, Any]:
    """What `portal/sections/conversation.html` shows, in the patient's language."""
    language = use_language(referral.patient.language)
    try:
        zone = ZoneInfo(referral.patient.time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")

    def when(moment) -> str:
        """`6 Dec 2026, 18:06` as the language writes it: the date, the time without seconds."""
        local = moment.astimezone(zone)
        pattern = get_datetime_format("medium", locale=language)
        return pattern.replace("{1}", format_date(local, "medium", locale=language)).replace(
            "{0}", format_time(local, "short", locale=language)
        )

    return {
        "conversation": thread(referral.id),
        "conversation_when": when,
        "conversation_max": MAX_BODY,
    }


def _reason_in_words(exc: DomainError) -> str:
    if isinstance(exc, RateLimited):
        return _("You have sent many messages in the last hour. Please wait a little, or call us.")
    reason = getattr(exc, "reason", None)
    if reason == MessageRefused.EMPTY:
        return _("Please write your message before sending it.")
    if reason == MessageRefused.TOO_LONG:
        return _(
            "Your message is too long: please keep it to %(count)s characters or fewer.",
            count=MAX_BODY,
        )
    return _("Your message contains characters that cannot be sent. Please type it again.")


def _refused(referral: Referral, token: str, exc: DomainError, typed: str):
    db.session.rollback()
    use_language(referral.patient.language)  # the reason is in the patient's words
    return _page(
        referral,
        token,
        exc.status,
        conversation_error=_reason_in_words(exc),
        conversation_draft=typed,
    )


@portal.post("/p/<token>/messages")
def post_message(token: str):
    referral = _referral(token)
    if referral is None:
        return _invalid()
    typed = request.form.get("message", "")
    try:
        post_patient_message(referral, typed, _patient_actor(referral))
    except (ValidationFailed, RateLimited) as exc:
        return _refused(referral, token, exc, typed[: MAX_BODY * 2])
    return redirect(url_for("portal.page", token=token, done="message") + "#conversation", 303)


@portal.errorhandler(ValidationFailed)
def _unstorable_form(exc: ValidationFailed):
    """Text the database cannot store (NUL, a lone surrogate) is refused at the edge before
    any view runs; on this form the patient is told so in their language, on the page."""
    from crm.core.errors import problem

    if request.endpoint == "portal.post_message" and request.view_args:
        referral = _referral(request.view_args.get("token", ""))
        if referral is None:
            return _invalid()
        refusal = MessageRefused("message", MessageRefused.UNSTORABLE, exc.detail)
        return _refused(referral, request.view_args["token"], refusal, "")
    return problem(exc.status, exc.code, exc.title, exc.detail, **exc.extensions)

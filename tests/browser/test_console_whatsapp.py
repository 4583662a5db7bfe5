"""WhatsApp on the referral page: the patient's WhatsApp reply, what we sent on WhatsApp
(free text in the session, or which approved template), and the answer on WhatsApp."""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy import select

from crm.auth import operations as auth
from crm.core.db import utcnow
from crm.extensions import db
from crm.messaging.composing.outbox import enqueue
from crm.messaging.models import OutboxMessage
from crm.referrals.models import Referral
from tests.browser.harness import expect
from tests.console.history import patient_replies

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery staple"
REPLY = "Can my wife come with me to the hospital?"
_numbers = itertools.count(1)


def _case(live_server) -> tuple[str, int, str]:
    """A coordinator, and a patient who allows WhatsApp and has just written on it; then
    a reminder went to them on WhatsApp, as free text inside the session."""
    n = next(_numbers)
    email = f"whatsapp.coordinator{n}@hospital.example"
    phone = f"+90532555{n:04d}"
    consents = {"sms": True, "email": True, "whatsapp": True, "source": "intake form"}
    with live_server.data() as factory:
        auth.create_staff_user(email, "Elif WhatsApp", "coordinator", PASSWORD)
        referral = factory.referral(
            factory.agency(f"Istanbul Care {n}"),
            patient={"given_name": "Ayşe", "phone": phone, "consents": consents},
        )
        referral_id = referral.id
    app = live_server.app
    patient_replies(app, app.test_client(), f"whatsapp:{phone}", sid=f"SMwa{n}", body=REPLY)
    with live_server.data() as factory:
        referral = db.session.get(Referral, referral_id)
        [message] = enqueue(
            referral, kind="mri_reminder", audience="patient", channels=["whatsapp"],
            key=f"browser-wa:{n}",
        ).messages  # fmt: skip
        message.status, message.provider_id, message.sent_at = "sent", f"SMwaout{n}", utcnow()
        name = referral.patient.full_name
    return email, referral_id, name


def _sign_in(page, live_server, email: str) -> None:
    page.goto(live_server.url("/console/sign-in"))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def test_a_coordinator_reads_a_whatsapp_reply_and_answers_it_on_whatsapp(
    live_server, browser_page, screenshot
):
    page = browser_page
    email, referral_id, name = _case(live_server)
    _sign_in(page, live_server, email)
    page.goto(live_server.url(f"/console/referrals/{referral_id}"))
    expect(page.get_by_role("heading", name=name)).to_be_visible()
    timeline = page.locator(".timeline")
    expect(timeline).to_contain_text("The patient replied by WhatsApp")
    expect(timeline).to_contain_text(REPLY)
    expect(timeline).to_contain_text("WhatsApp to the patient: mri reminder")
    expect(timeline).to_contain_text("Sent as free text in the patient's 24-hour WhatsApp session")
    conversation = page.locator("#conversation")
    expect(conversation).to_contain_text(REPLY)
    expect(conversation).to_contain_text("The patient is told by WhatsApp")
    screenshot("whatsapp-reply", sizes=("phone", "laptop"))

    page.get_by_label("Your answer").fill("Yes, one companion may stay with you.")
    page.get_by_role("button", name="Send answer").click()
    expect(page.get_by_role("status")).to_contain_text("Answer sent")
    with live_server.app.app_context():
        channels = set(
            db.session.scalars(
                select(OutboxMessage.channel).where(
                    OutboxMessage.referral_id == referral_id,
                    OutboxMessage.kind == "conversation_answer",
                )
            )
        )
        db.session.remove()
    assert channels == {"whatsapp"}  # the channel the patient wrote on; it says only "news"

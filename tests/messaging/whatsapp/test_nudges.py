"""Nudge rules that prefer WhatsApp, then SMS: the first permitted channel is chosen."""

from __future__ import annotations

from datetime import timedelta

import pytest

from crm.nudges.jobs import sweep
from crm.nudges.operations import rule_by_code
from crm.referrals.operations import move_to_stage
from tests.helpers import API, field_errors
from tests.messaging.support import outbox_for
from tests.messaging.whatsapp.conftest import whatsapp_referral

pytestmark = pytest.mark.usefixtures("without_clinical_guards", "templates_file")
DAY = timedelta(days=1)


def _reminder(factory, coordinator, **consents):
    """The shipped rule mri_missing_reminder fired: channels whatsapp, sms, email."""
    referral = whatsapp_referral(factory, **consents)
    move_to_stage(referral, "awaiting_mri", coordinator.actor)
    sweep(referral.stage_entered_at + 3 * DAY)
    return outbox_for(referral.id, rule_code="mri_missing_reminder")


def test_the_shipped_reminder_prefers_whatsapp_then_sms(session):
    assert rule_by_code("mri_missing_reminder").channels[:2] == ["whatsapp", "sms"]


def test_a_nudge_goes_by_whatsapp_when_the_patient_allows_it(factory, coordinator):
    [message] = _reminder(factory, coordinator)
    assert (message.channel, message.status, message.fallback_channel) == (
        "whatsapp",
        "queued",
        "sms",
    )


def test_a_nudge_falls_back_to_sms_without_whatsapp_consent(factory, coordinator):
    [message] = _reminder(factory, coordinator, whatsapp=False)
    assert (message.channel, message.status) == ("sms", "queued")


def test_a_nudge_takes_sms_when_whatsapp_has_neither_session_nor_template(
    app, factory, coordinator, tmp_path, monkeypatch
):
    empty = tmp_path / "none.toml"
    empty.write_text("", encoding="utf-8")
    monkeypatch.setitem(app.config["CRM"], "WHATSAPP_TEMPLATES_FILE", str(empty))
    [message] = _reminder(factory, coordinator)
    assert message.channel == "sms"


def test_an_admin_may_make_a_rule_prefer_whatsapp(client, factory):
    admin = factory.staff("admin")
    response = client.patch(
        f"{API}/nudge-rules/plan_unanswered_patient",
        json={"channels": ["whatsapp", "sms", "email"]},
        headers=admin.headers(),
    )
    assert response.status_code == 200, response.json
    assert response.json["channels"] == ["whatsapp", "sms", "email"]


def test_staff_are_never_reached_on_whatsapp(client, factory):
    admin = factory.staff("admin")
    response = client.patch(
        f"{API}/nudge-rules/mri_review_overdue",
        json={"channels": ["whatsapp", "email"]},
        headers=admin.headers(),
    )
    assert response.status_code == 422
    assert "channels" in field_errors(response.json)

# Test data is Russian and Arabic text on purpose: its letters are not typos.
# ruff: noqa: RUF001
"""The 7-day and 1-day travel messages: the email carries the procedure's checklist and
pre-operative instructions in the patient's language; the SMS carries neither."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from crm.core.db import utcnow
from crm.nudges.jobs import sweep
from crm.nudges.operations import schedule_for_date
from tests.messaging.composing.test_templates import HEALTH_WORDS
from tests.messaging.support import NO_QUIET_HOURS, new_referral, outbox_for

DAY = timedelta(days=1)

pytestmark = pytest.mark.usefixtures("without_clinical_guards")


@pytest.fixture(autouse=True)
def _no_quiet_hours(app, monkeypatch):
    monkeypatch.setitem(app.config["CRM"], "QUIET_HOURS", NO_QUIET_HOURS)


def _travel_messages(factory, language: str, rule: str, before: timedelta):
    referral = new_referral(factory, patient={"language": language})
    travel = (utcnow() + 30 * DAY).replace(hour=0, minute=0, second=0, microsecond=0)
    schedule_for_date(referral, "travel_date", travel)
    sweep(travel - before)
    [email] = outbox_for(referral.id, rule_code=rule, channel="email")
    [sms] = outbox_for(referral.id, rule_code=rule, channel="sms")
    return email, sms


def test_the_7_day_email_carries_the_checklist_and_instructions(factory, session):
    email, _ = _travel_messages(factory, "en", "travel_in_7_days", 7 * DAY)
    assert "- Your MRI images (on a CD, DVD or USB stick) and the radiologist's report" in (
        email.body_text
    )
    assert "- Do not stop any medicine on your own." not in email.body_text  # whole items
    assert "Do not stop any medicine on your own." in email.body_text
    assert "<li>" not in email.body_text
    assert "the radiologist&#39;s report" in email.body_html


def test_the_7_day_email_speaks_the_patients_language(factory, session):
    email, _ = _travel_messages(factory, "de", "travel_in_7_days", 7 * DAY)
    assert "- Ihre MRT-Bilder (auf CD, DVD oder USB-Stick) und den Befund des Radiologen" in (
        email.body_text
    )
    assert "Vor der Operation:" in email.body_text
    assert "Setzen Sie kein Medikament eigenmächtig ab." in email.body_text


def test_the_1_day_email_carries_them_too(factory, session):
    email, _ = _travel_messages(factory, "ru", "travel_in_1_day", DAY)
    assert "Снимки МРТ" in email.body_text
    assert "Не отменяйте лекарства самостоятельно." in email.body_text


@pytest.mark.parametrize("language", ["en", "tr", "ar", "ru", "de"])
@pytest.mark.parametrize(
    ("rule", "before"), [("travel_in_7_days", 7 * DAY), ("travel_in_1_day", DAY)]
)
def test_the_travel_sms_carries_no_health_detail(app, factory, session, language, rule, before):
    _, sms = _travel_messages(factory, language, rule, before)
    hospital = app.config["CRM"]["HOSPITAL_NAME"]  # "... Spine Centre" is a name, not a detail
    body = re.sub(r"https?://\S+", "", sms.body_text.replace(hospital, "")).lower()
    assert "mri" not in body and "passport" not in body
    assert not re.search(HEALTH_WORDS[language], body), body
    assert not re.search(HEALTH_WORDS["en"], body), body

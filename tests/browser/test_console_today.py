"""A coordinator's Today in a real browser: a task due today, an urgent alert, a trip this
week on the calendar; then the outbox, where a failed message is retried."""

from __future__ import annotations

import uuid
from datetime import datetime, time, timedelta
from itertools import count
from zoneinfo import ZoneInfo

import pytest

from crm.auth import operations as auth
from crm.core.db import utcnow
from crm.features import ALL_FEATURES, build, install
from crm.messaging.composing.outbox import enqueue
from crm.referrals.operations import assign_owner, move_to_stage
from crm.tasks.operations import open_task
from crm.travel import operations as travel
from crm.travel.schemas import TripArgs
from tests.browser.harness import expect, scrolls_sideways
from tests.conftest import CLINICAL_GUARD_FEATURES
from tests.travel.support import TO_PLAN_ACCEPTED, trip_around

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery staple"
ZONE = "Europe/Istanbul"
_numbers = count(1)


def _todays_noon() -> datetime:
    today = utcnow().astimezone(ZoneInfo(ZONE)).date()
    return datetime.combine(today, time(12), tzinfo=ZoneInfo(ZONE))


def _a_coordinators_day(live_server) -> dict:
    """A coordinator who owns a referral booked to land today at noon (their time), with a
    task due today, an urgent alert open and a failed SMS."""
    email = f"today.coordinator{next(_numbers)}@hospital.example"
    app = live_server.app
    with live_server.data() as factory:
        user = auth.create_staff_user(email, "Elif Today", "coordinator", PASSWORD)
        user.time_zone = ZONE
        referral = factory.referral(factory.agency("Berlin Medical Travel"))
        original = app.extensions["crm.features"]
        install(app, build(n for n in ALL_FEATURES if n not in CLINICAL_GUARD_FEATURES))
        try:
            assign_owner(referral, user.id, factory.staff().actor)
            actor = factory.staff().actor
            for stage in TO_PLAN_ACCEPTED:
                move_to_stage(referral, stage, actor)
            payload = trip_around(_todays_noon() + timedelta(days=1))
            travel.book_trip(referral, TripArgs().load(payload), actor)
        finally:
            install(app, original)
        end_of_day = _todays_noon().replace(hour=23, minute=50)
        open_task(referral, "Confirm the airport pick-up", "manual", due_at=end_of_day)
        open_task(referral, "Check-in alert: fever", "alert", priority="urgent")
        message = enqueue(
            referral,
            kind="ad_hoc",
            audience="patient",
            channels=["sms"],
            key=f"browser:{uuid.uuid4().hex}",
            extra={"subject": "News", "message": "Your transfer is booked"},
        ).messages[0]
        message.status, message.attempts = "failed", 1
        message.error_code, message.error_message = "21211", "twilio 400 code 21211: invalid To"
        settings = app.config["CRM"]
        cap, quiet = settings["SMS_CAP_GLOBAL_HOURLY"], settings["QUIET_HOURS"]
        settings["SMS_CAP_GLOBAL_HOURLY"], settings["QUIET_HOURS"] = 0, "00:00-00:00"
        try:  # one more, held by the spend cap through the real outbox
            enqueue(referral, kind="ad_hoc", audience="patient", channels=["sms"],
                    key=f"browser:{uuid.uuid4().hex}",
                    extra={"subject": "News", "message": "Your hotel is booked"})  # fmt: skip
        finally:
            settings["SMS_CAP_GLOBAL_HOURLY"], settings["QUIET_HOURS"] = cap, quiet
        factory.session.commit()
        return {"email": email, "patient": referral.patient.full_name, "message": message.id}


def _sign_in(page, live_server, email: str) -> None:
    page.goto(live_server.url("/console/today"))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


@pytest.fixture
def daytime_everywhere(live_server):
    """No quiet hours while the test runs: at the patient's night the outbox page reads a
    capped SMS as held by quiet hours (crm.messaging.queries.hold_reason), and this test
    looks for the spend cap whatever the hour it runs at."""
    settings = live_server.app.config["CRM"]
    quiet = settings["QUIET_HOURS"]
    settings["QUIET_HOURS"] = "00:00-00:00"
    yield
    settings["QUIET_HOURS"] = quiet


@pytest.mark.usefixtures("daytime_everywhere")
def test_a_coordinator_works_through_today_and_retries_a_failed_message(
    live_server, browser_page, screenshot
):
    day = _a_coordinators_day(live_server)
    page = browser_page
    _sign_in(page, live_server, day["email"])
    expect(page.get_by_role("heading", name="Today", exact=True)).to_be_visible()
    mine = page.locator("section", has=page.get_by_role("heading", name="My tasks"))
    expect(mine).to_contain_text("Confirm the airport pick-up")
    alerts = page.locator("section", has=page.get_by_role("heading", name="Urgent alerts"))
    expect(alerts).to_contain_text("Check-in alert: fever")
    expect(alerts.get_by_role("link", name=day["patient"])).to_be_visible()
    today = page.locator(".week-day.is-today")
    expect(today).to_contain_text("Arrival")
    expect(today).to_contain_text(day["patient"])
    screenshot("today", sizes=("laptop", "tablet"))
    page.set_viewport_size({"width": 768, "height": 1024})
    assert not scrolls_sideways(page)
    page.set_viewport_size({"width": 1366, "height": 768})

    page.get_by_role("link", name="Outbox").click()
    expect(page.get_by_role("heading", name="Outbox")).to_be_visible()
    expect(page.locator("body")).to_contain_text("twilio 400 code 21211: invalid To")
    expect(page.locator("body")).not_to_contain_text("+4915112345678")
    screenshot("outbox", sizes=("laptop", "tablet"))
    page.get_by_role("button", name=f"Retry message {day['message']} to {day['patient']}").click()
    expect(page.get_by_role("status")).to_contain_text("Queued again")
    screenshot("retried")

    page.get_by_role("link", name="Held").click()
    expect(page.locator("table.outbox")).to_contain_text("spend cap until")
    screenshot("held")

    page.get_by_role("link", name="Today", exact=True).first.click()
    mine = page.locator("section", has=page.get_by_role("heading", name="My tasks"))
    mine.get_by_role("button", name="Done: Confirm the airport pick-up").click()
    expect(page.get_by_role("status")).to_contain_text("Task marked done.")
    expect(
        page.locator("section", has=page.get_by_role("heading", name="My tasks"))
    ).not_to_contain_text("Confirm the airport pick-up")

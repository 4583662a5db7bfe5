"""An agency's user manages webhooks in the agency panel in a real browser: the endpoint
list and its delivery log, an endpoint added with its secret shown once, one delivery sent
again."""

from __future__ import annotations

from itertools import count

import pytest

from crm.auth import operations as auth
from crm.auth.models import StaffUser
from crm.core.actors import SYSTEM
from crm.referrals.operations import move_to_stage
from crm.webhooks import operations
from tests.browser.harness import expect
from tests.factories import referral_payload

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery staple"
_numbers = count(1)


def _agency_with_a_delivery(live_server) -> str:
    n = next(_numbers)
    email = f"browser.agent{n}@agency.example"
    with live_server.data() as factory:
        caller = factory.agency(f"Bosphorus Med Travel {n}")
        user = StaffUser(
            email=email,
            name="Leyla Agent",
            role="agency",
            agency_id=caller.actor.agency_id,
            time_zone="Europe/Berlin",
        )
        auth.set_password(user, PASSWORD)
        factory.session.add(user)
        operations.register_endpoint(
            {
                "url": "http://localhost:8099/crm-hooks",
                "description": "our CRM",
                "event_types": ["referral.stage_changed", "document.requested"],
            },
            caller.actor,
        )
        patient = {"phone": f"+4915233{n:06d}", "email": f"browser{n}@patient.example"}
        referral = factory.referral(caller, patient=referral_payload()["patient"] | patient)
        move_to_stage(referral, "awaiting_mri", SYSTEM)
    return email


def test_an_agency_user_adds_an_endpoint_sees_the_secret_once_and_sends_a_delivery_again(
    live_server, browser_page, screenshot, monkeypatch
):
    monkeypatch.setitem(live_server.app.config["CRM"], "WEBHOOKS_ALLOW_LOCALHOST", True)
    email = _agency_with_a_delivery(live_server)
    page = browser_page
    page.goto(live_server.url("/agency/webhooks"))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Webhooks", exact=True)).to_be_visible()
    log = page.get_by_role("table", name="The 2 most recent deliveries")
    expect(log).to_contain_text("document.requested")
    expect(log).to_contain_text("referral.stage_changed")
    screenshot("endpoints-and-log", sizes=("laptop", "phone"))

    page.get_by_label("URL (https)").fill("http://localhost:8100/second")
    page.get_by_label("Description").fill("reporting")
    for box in page.locator('input[name="event_types"]').all():
        box.uncheck()
    page.get_by_label("plan.accepted", exact=False).check()
    page.get_by_role("button", name="Add endpoint").click()
    secret = page.locator("#new-secret")
    expect(secret).to_contain_text("whsec_")
    screenshot("secret-shown-once")

    page.goto(live_server.url("/agency/webhooks"))
    expect(page.locator("#new-secret")).to_have_count(0)
    page.get_by_role("button", name="Send").first.click()
    expect(page.get_by_role("status")).to_contain_text("queued to be sent again")
    screenshot("sent-again")

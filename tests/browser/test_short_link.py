"""The SMS's short link in a real browser: tapped on a phone, it opens the patient's own
page; a made-up code gets the invalid-link page."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from crm.extensions import db
from crm.messaging.models import OutboxMessage
from tests.browser.harness import expect
from tests.browser.patients import with_plan_offered

pytestmark = pytest.mark.browser


def _sms_path(referral_id: int) -> str:
    """The path of the short link in the referral's latest SMS (the plan is ready)."""
    body = db.session.scalars(
        select(OutboxMessage.body_text)
        .where(OutboxMessage.referral_id == referral_id, OutboxMessage.channel == "sms")
        .order_by(OutboxMessage.id.desc())
    ).first()
    return re.search(r"/s/[A-Za-z0-9]{12}", body).group()


def test_the_sms_short_link_opens_the_patients_page_on_a_phone(
    live_server, browser_page, screenshot
):
    with live_server.data() as factory:
        referral = with_plan_offered(factory, "ar")
        path = _sms_path(referral.id)
    browser_page.set_viewport_size({"width": 390, "height": 844})
    response = browser_page.goto(live_server.url(path))
    assert response is not None and response.status == 200
    assert "/p/" in browser_page.url
    expect(browser_page.locator("html")).to_have_attribute("dir", "rtl")
    expect(browser_page.get_by_role("heading", name="مرحبًا Layla")).to_be_visible()
    screenshot("opened", sizes=("phone",))


def test_a_made_up_short_link_gets_the_invalid_link_page(live_server, browser_page, screenshot):
    response = browser_page.goto(live_server.url("/s/AAAAAAAAAAAA"))
    assert response is not None and response.status == 404
    expect(browser_page.locator("body")).not_to_contain_text("Layla")
    screenshot("invalid", sizes=("phone",))

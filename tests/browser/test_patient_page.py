"""The patient's private page in a real browser: read the plan in English, German and
Arabic at phone and laptop size, accept it, answer a check-in with a red flag."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest

from crm.plans.queries import current_plan
from crm.portal.i18n import Words
from tests.browser.harness import SIZES, expect, scrolls_sideways
from tests.browser.patients import home_after_surgery, token_of, with_plan_offered

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser

LANGUAGES = [
    pytest.param("en", "Hello Emma", "ltr", id="english"),
    pytest.param("de", "Hallo Jonas", "ltr", id="german"),
    pytest.param("ar", "مرحبًا Layla", "rtl", id="arabic"),
]


def _open(page: Page, live_server, token: str) -> None:
    response = page.goto(live_server.url(f"/p/{token}"))
    assert response is not None and response.status == 200


@pytest.mark.parametrize(("language", "greeting", "direction"), LANGUAGES)
def test_the_offered_plan_reads_in_the_patients_language_at_phone_and_laptop_size(
    live_server, browser_page, screenshot, language, greeting, direction
):
    with live_server.data() as factory:
        token = token_of(with_plan_offered(factory, language))
    words = Words(language)
    _open(browser_page, live_server, token)
    html = browser_page.locator("html")
    expect(html).to_have_attribute("lang", language)
    expect(html).to_have_attribute("dir", direction)
    expect(browser_page.get_by_role("heading", name=greeting)).to_be_visible()
    expect(browser_page.get_by_role("heading", name=words["plan"])).to_be_visible()
    expect(browser_page.get_by_text(words["stage_plan_offered"])).to_be_visible()
    expect(browser_page.get_by_label(words["ack_info"])).not_to_be_checked()
    expect(browser_page.get_by_label(words["ack_data"])).not_to_be_checked()
    expect(browser_page.get_by_role("button", name=words["accept"])).to_be_visible()
    screenshot("plan", sizes=("phone", "laptop"))
    browser_page.set_viewport_size(SIZES["phone"])
    assert not scrolls_sideways(browser_page)


def test_the_patient_accepts_the_plan_by_ticking_both_consents(
    live_server, browser_page, screenshot
):
    with live_server.data() as factory:
        referral = with_plan_offered(factory, "en")
        referral_id, token = referral.id, token_of(referral)
    page = browser_page
    _open(page, live_server, token)
    page.get_by_label("I have read the treatment information").check()
    page.get_by_label("I agree to the processing of my health data").check()
    page.get_by_role("button", name="Accept this plan").click()
    expect(page).to_have_url(re.compile(r"done=accepted"))
    expect(page.get_by_text("You have accepted your plan.")).to_be_visible()
    expect(page.get_by_text(re.compile(r"You accepted this plan on \w+"))).to_be_visible()
    expect(page.get_by_role("button", name="Accept this plan")).to_have_count(0)
    screenshot("accepted", sizes=("phone", "laptop"))
    with live_server.data():
        assert current_plan(referral_id).status == "accepted"


def test_the_plan_is_not_accepted_without_both_consents(live_server, browser_page):
    with live_server.data() as factory:
        token = token_of(with_plan_offered(factory, "en"))
    page = browser_page
    _open(page, live_server, token)
    page.get_by_label("I have read the treatment information").check()
    page.get_by_role("button", name="Accept this plan").click()  # the browser holds the form
    expect(page.get_by_label("I agree to the processing of my health data")).not_to_be_checked()
    expect(page.get_by_role("button", name="Accept this plan")).to_be_visible()
    assert "done=" not in page.url


@pytest.mark.parametrize("language", ["en", "ar"], ids=["english", "arabic"])
def test_a_red_flag_in_the_check_in_tells_the_patient_to_call_now(
    live_server, browser_page, screenshot, language
):
    with live_server.data() as factory:
        token = token_of(home_after_surgery(factory, language))
    words = Words(language)
    page = browser_page
    _open(page, live_server, token)
    expect(page.get_by_role("heading", name=words["checkin"])).to_be_visible()
    page.get_by_label(words["back_pain"]).fill("3")
    page.get_by_label(words["leg_pain"]).fill("2")
    page.get_by_label(words["wound"]).select_option(label=words["wound_healing_well"])
    page.get_by_label(words["bladder"]).check()
    page.get_by_label(words["free_text"]).fill("Since this morning.")
    screenshot("check-in", sizes=("phone", "laptop"))
    page.get_by_role("button", name=words["send"], exact=True).click()  # not "Send message"
    expect(page).to_have_url(re.compile(r"done=urgent"))
    phone = live_server.app.config["CRM"]["HOSPITAL_PHONE"]
    expect(page.get_by_text(words["urgent"].format(phone=phone))).to_be_visible()
    expect(page.get_by_role("heading", name=words["checkin"])).to_have_count(0)
    screenshot("call-us", sizes=("phone", "laptop"))

"""Informed consent in a real browser: the treatment information before the consent and the
checklist once travel is booked, in English and Arabic at phone and laptop size."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

from crm.catalogue.queries import procedure_by_code
from crm.core.db import utcnow
from crm.plans.information import ShownInformation, consent_information
from crm.plans.operations import accept_plan
from crm.plans.queries import current_plan
from crm.travel import operations as travel
from crm.travel.schemas import TripArgs
from tests.browser.harness import SIZES, expect, scrolls_sideways
from tests.browser.patients import token_of, with_plan_offered
from tests.plans.support import CONSENTS, patient_of
from tests.travel.support import trip_around

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser

LANGUAGES = [
    pytest.param("en", "ltr", "About your treatment: Microdiscectomy", id="english"),
    pytest.param("ar", "rtl", "عن علاجك: استئصال القرص المجهري", id="arabic"),
]
BEFORE_YOU_TRAVEL = {"en": "Before you travel", "ar": "قبل السفر"}
MRI_ITEM = {"en": "Your MRI images", "ar": "صور الرنين المغناطيسي"}


def _open(page: Page, live_server, token: str) -> None:
    response = page.goto(live_server.url(f"/p/{token}"))
    assert response is not None and response.status == 200


def _travel_booked(factory, language: str):
    referral = with_plan_offered(factory, language)
    plan = current_plan(referral.id)
    information = consent_information(plan, procedure_by_code(plan.procedure_code), language)
    shown = ShownInformation(plan.version, language, information.sha256)
    accept_plan(plan, dict(CONSENTS), patient_of(referral), shown=shown)
    admission = (utcnow() + timedelta(days=20)).replace(hour=6, minute=0, second=0, microsecond=0)
    coordinator = factory.staff("coordinator")
    travel.book_trip(referral, TripArgs().load(trip_around(admission)), coordinator.actor)
    factory.session.commit()
    return referral


@pytest.mark.parametrize(("language", "direction", "title"), LANGUAGES)
def test_the_treatment_information_comes_before_the_consent(
    live_server, browser_page, screenshot, language, direction, title
):
    with live_server.data() as factory:
        token = token_of(with_plan_offered(factory, language))
    page = browser_page
    _open(page, live_server, token)
    expect(page.locator("html")).to_have_attribute("dir", direction)
    heading = page.get_by_role("heading", name=title)
    expect(heading).to_be_visible()
    info = page.locator("section.consent-information")
    expect(info.get_by_role("link", name=re.compile("PDF"))).to_be_visible()
    # the information sits above the consent checkbox
    info_box = info.bounding_box()
    consent_box = page.locator('input[name="ack_info"]').bounding_box()
    assert info_box and consent_box and info_box["y"] < consent_box["y"]
    hidden = page.locator('input[name="information_sha256"]')
    assert re.fullmatch(r"[0-9a-f]{64}", hidden.get_attribute("value") or "")
    screenshot("information", sizes=("phone", "laptop"))
    page.set_viewport_size(SIZES["phone"])
    assert not scrolls_sideways(page)


@pytest.mark.parametrize(("language", "direction", "title"), LANGUAGES)
def test_the_checklist_shows_once_travel_is_booked(
    live_server, browser_page, screenshot, language, direction, title
):
    with live_server.data() as factory:
        token = token_of(_travel_booked(factory, language))
    page = browser_page
    _open(page, live_server, token)
    section = page.locator("section.before-you-travel")
    expect(section.get_by_role("heading", name=BEFORE_YOU_TRAVEL[language])).to_be_visible()
    expect(section.get_by_text(MRI_ITEM[language])).to_be_visible()
    expect(section.get_by_role("listitem")).to_have_count(13)
    screenshot("checklist", sizes=("phone", "laptop"))
    page.set_viewport_size(SIZES["phone"])
    assert not scrolls_sideways(page)


def test_the_patient_accepts_after_reading_and_the_pdf_downloads(
    live_server, browser_page, screenshot
):
    with live_server.data() as factory:
        referral = with_plan_offered(factory, "en")
        referral_id, token = referral.id, token_of(referral)
    page = browser_page
    _open(page, live_server, token)
    with page.expect_download() as download:
        page.get_by_role("link", name=re.compile("PDF")).click()
    assert download.value.suggested_filename.endswith("-v1.pdf")
    page.get_by_label("I have read the treatment information").check()
    page.get_by_label("I agree to the processing of my health data").check()
    page.get_by_role("button", name="Accept this plan").click()
    expect(page).to_have_url(re.compile(r"done=accepted"))
    with live_server.data():
        plan = current_plan(referral_id)
        assert (plan.status, plan.consent_language) == ("accepted", "en")
        assert plan.consent_information_sha256
    screenshot("accepted", sizes=("phone",))

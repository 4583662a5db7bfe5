"""The patient's private page in a real browser: read the plan in English, German and
Arabic at phone, 320 px and laptop size, accept it, answer a check-in with a red flag, see
the real stay after discharge, and meet an invalid link in the browser's language. In
Arabic, phone numbers, amounts and full stops must land where a reader expects them."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
from flask_babel import gettext

from crm.core.db import utcnow
from crm.core.i18n import use_language
from crm.plans.operations import accept_plan
from crm.plans.queries import current_plan
from crm.travel import operations as travel
from crm.travel.schemas import TripArgs
from tests.browser.harness import SIZES, expect, scrolls_sideways
from tests.browser.patients import home_after_surgery, token_of, with_plan_offered
from tests.plans.support import CONSENTS, patient_of
from tests.travel.support import trip_around

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

pytestmark = pytest.mark.browser

NARROW = {"width": 320, "height": 640}

LANGUAGES = [
    pytest.param("en", "Hello Emma", "ltr", id="english"),
    pytest.param("de", "Hallo Jonas", "ltr", id="german"),
    pytest.param("ar", "مرحبًا Layla", "rtl", id="arabic"),
]


def said(live_server, language: str, msgid: str, **values) -> str:
    """What the page says for `msgid` in `language` (the catalogue's translation)."""
    with live_server.app.test_request_context():
        use_language(language)
        return gettext(msgid, **values)


def _open(page: Page, live_server, token: str) -> None:
    response = page.goto(live_server.url(f"/p/{token}"))
    assert response is not None and response.status == 200


def _at_320(page: Page, screenshot, name: str) -> None:
    page.set_viewport_size(NARROW)
    screenshot(f"{name}--320")
    assert not scrolls_sideways(page)
    page.set_viewport_size(SIZES["laptop"])


# Where the browser drew one character of a text node (its left edge, in CSS pixels).
_LEFT_OF = """(node, i) => { const r = document.createRange(); r.setStart(node, i);
    r.setEnd(node, i + 1); return r.getBoundingClientRect().left; }"""


def _reads_left_to_right(locator: Locator) -> bool:
    """Whether the first character of the element's text is drawn left of its last."""
    return locator.evaluate(
        f"""(el) => {{ const leftOf = {_LEFT_OF};
            const text = el.textContent, node = el.firstChild.nodeType === 3 ? el.firstChild
                : el.querySelector("*").firstChild;
            return node.data === text && leftOf(node, 0) < leftOf(node, text.length - 1); }}"""
    )


def _digits_in_order(locator: Locator, digits: str) -> bool:
    """Whether `digits` inside the element's text are drawn first to last, left to right."""
    return locator.evaluate(
        f"""(el, digits) => {{ const leftOf = {_LEFT_OF};
            const node = el.firstChild, i = node.data.indexOf(digits);
            return i >= 0 && leftOf(node, i) < leftOf(node, i + digits.length - 1); }}""",
        digits,
    )


def _full_stop_ends_the_sentence(page: Page) -> bool:
    """In the footer's Arabic sentence, the full stop after the phone number is drawn at the
    sentence's end (left of the number), not thrown to the start of the line."""
    return page.evaluate(
        f"""() => {{ const leftOf = {_LEFT_OF};
            const p = document.querySelector("footer p"), tail = p.lastChild;
            const number = p.querySelector("a").getBoundingClientRect();
            return tail.data.trim() === "." && leftOf(tail, tail.data.indexOf(".")) < number.left;
        }}"""
    )


@pytest.mark.parametrize(("language", "greeting", "direction"), LANGUAGES)
def test_the_offered_plan_reads_in_the_patients_language_at_every_width(
    live_server, browser_page, screenshot, language, greeting, direction
):
    with live_server.data() as factory:
        token = token_of(with_plan_offered(factory, language))
    page = browser_page
    _open(page, live_server, token)
    html = page.locator("html")
    expect(html).to_have_attribute("lang", language)
    expect(html).to_have_attribute("dir", direction)
    expect(page.get_by_role("heading", name=greeting)).to_be_visible()
    expect(page.get_by_role("heading", name=said(live_server, language, "Your treatment plan")))
    current = page.locator('ol.progress li[aria-current="step"]')
    expect(current).to_contain_text(said(live_server, language, "Treatment plan"))
    for consent in (
        "I have read the treatment information, including the risks to discuss with the surgeon.",
        "I agree to the processing of my health data for this treatment (GDPR / KVKK).",
    ):
        expect(page.get_by_label(said(live_server, language, consent))).not_to_be_checked()
    accept = said(live_server, language, "Accept this plan")
    expect(page.get_by_role("button", name=accept)).to_be_visible()
    screenshot("plan", sizes=("phone", "laptop"))
    page.set_viewport_size(SIZES["phone"])
    assert not scrolls_sideways(page)
    _at_320(page, screenshot, "plan")


def test_every_page_says_who_is_speaking_with_phones_to_tap(live_server, browser_page):
    with live_server.data() as factory:
        token = token_of(with_plan_offered(factory, "en"))
    settings = live_server.app.config["CRM"]
    _open(browser_page, live_server, token)
    banner = browser_page.get_by_role("banner")
    expect(banner).to_contain_text(settings["HOSPITAL_NAME"])
    expect(banner).to_contain_text(settings["HOSPITAL_ADDRESS"])
    expect(banner).to_contain_text(settings["HOSPITAL_ACCREDITATION"])
    call = banner.get_by_role("link", name=re.compile("Call us"))
    expect(call).to_have_attribute("href", "tel:" + settings["HOSPITAL_PHONE"].replace(" ", ""))
    emergency = banner.get_by_role("link", name=re.compile("Emergency"))
    dial = settings["HOSPITAL_EMERGENCY_PHONE"].replace(" ", "")
    expect(emergency).to_have_attribute("href", "tel:" + dial)


def test_in_arabic_phone_numbers_amounts_and_full_stops_read_as_written(
    live_server, browser_page, screenshot
):
    with live_server.data() as factory:
        token = token_of(with_plan_offered(factory, "ar"))
    page = browser_page
    page.set_viewport_size(SIZES["phone"])
    _open(page, live_server, token)
    phone = live_server.app.config["CRM"]["HOSPITAL_PHONE"]
    number = page.locator("footer a[href^='tel:']")
    expect(number).to_have_text(phone)
    assert _reads_left_to_right(number), "the phone number is drawn backwards"
    total = page.locator("td.amount strong bdi")
    expect(total).to_contain_text("7,100.00")
    assert _digits_in_order(total, "7,100.00"), "the digits of the amount are drawn backwards"
    assert "$US" not in page.content() and "US$" not in page.content()
    assert _full_stop_ends_the_sentence(page), "the full stop jumped to the sentence's start"
    screenshot("arabic", sizes=("phone",))
    _at_320(page, screenshot, "arabic")


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
    today = utcnow().strftime("%B")  # the month's name, in the English page
    expect(page.get_by_role("status")).to_contain_text(
        re.compile(rf"You accepted this plan on {today} \d+, \d{{4}}\.")
    )
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


def test_the_plan_form_is_usable_with_the_keyboard_alone(live_server, browser_page):
    with live_server.data() as factory:
        referral = with_plan_offered(factory, "en")
        referral_id, token = referral.id, token_of(referral)
    page = browser_page
    _open(page, live_server, token)
    page.get_by_label("I have read the treatment information").focus()
    page.keyboard.press("Space")
    page.keyboard.press("Tab")
    page.keyboard.press("Space")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"done=accepted"))
    with live_server.data():
        assert current_plan(referral_id).status == "accepted"


@pytest.mark.parametrize("language", ["en", "ar"], ids=["english", "arabic"])
def test_a_red_flag_in_the_check_in_tells_the_patient_to_call_now(
    live_server, browser_page, screenshot, language
):
    with live_server.data() as factory:
        referral = home_after_surgery(factory, language)
        token = token_of(referral)
        # the questions are catalogue data, labelled per language there
        asked = {q.code: q for q in referral.procedure.check_in_form.questions}
        label = {code: q.label_in(language) for code, q in asked.items()}
        healing_well = dict(asked["wound"].options_in(language))["healing_well"]

    def say(msgid: str, **values) -> str:
        return said(live_server, language, msgid, **values)

    page = browser_page
    _open(page, live_server, token)
    first = page.locator("main > section").first
    expect(first.get_by_role("heading")).to_have_text(say("How are you doing?"))
    page.get_by_label(label["back_pain"]).fill("3")
    page.get_by_label(label["leg_pain"]).fill("2")
    page.get_by_label(label["wound"]).select_option(label=healing_well)
    page.get_by_label(label["bladder_or_bowel_trouble"]).check()
    page.get_by_label(say("Anything else you want to tell us")).fill("Since this morning.")
    screenshot("check-in", sizes=("phone", "laptop"))
    page.get_by_role("button", name=say("Send"), exact=True).click()  # not "Send message"
    expect(page).to_have_url(re.compile(r"done=urgent"))
    emergency = live_server.app.config["CRM"]["HOSPITAL_EMERGENCY_PHONE"]
    alert = page.get_by_role("alert")
    expect(alert).to_have_text(
        say(
            "Please call us now on %(phone)s: some of your answers need a doctor's "
            "attention today.",
            phone=emergency,
        )
    )
    expect(alert.get_by_role("link")).to_have_attribute("href", re.compile(r"^tel:\+"))
    expect(page.get_by_role("heading", name=say("How are you doing?"))).to_have_count(0)
    screenshot("call-us", sizes=("phone", "laptop"))


@pytest.mark.parametrize("language", ["en", "ar"], ids=["english", "arabic"])
def test_after_discharge_the_page_shows_the_real_stay_and_flights_in_their_zone(
    live_server, browser_page, screenshot, language
):
    with live_server.data() as factory:
        token = token_of(_stayed_longer_than_planned(factory, language))
    page = browser_page
    _open(page, live_server, token)
    travel_section = page.locator(
        "section",
        has=page.get_by_role("heading", level=2).filter(
            has_text=said(live_server, language, "Your travel")
        ),
    )
    expect(travel_section).to_contain_text(said(live_server, language, "Discharged from hospital"))
    expect(travel_section).not_to_contain_text(said(live_server, language, "Discharge (planned)"))
    city = "Berlin" if language == "en" else "برلين"
    expect(travel_section).to_contain_text(city)
    current = page.locator('ol.progress li[aria-current="step"]')
    expect(current).to_contain_text(said(live_server, language, "Recovery"))
    screenshot("after-discharge", sizes=("phone", "laptop"))
    _at_320(page, screenshot, "after-discharge")


def _stayed_longer_than_planned(factory, language: str):
    """Admitted two hours late, discharged an hour ago, a day later than planned."""
    referral = with_plan_offered(factory, language)
    accept_plan(current_plan(referral.id), dict(CONSENTS), patient_of(referral))
    coordinator = factory.staff("coordinator")
    discharged_at = utcnow() - timedelta(hours=1)
    planned = discharged_at - timedelta(days=3)
    travel.book_trip(referral, TripArgs().load(trip_around(planned)), coordinator.actor)
    travel.record_admission(referral, planned + timedelta(hours=2), coordinator.actor)
    travel.record_discharge(referral, discharged_at, coordinator.actor)
    factory.session.commit()
    return referral


@pytest.mark.parametrize(
    ("accept_language", "lang", "direction"),
    [("ar-SA,ar;q=0.9,en;q=0.5", "ar", "rtl"), ("de-DE,de;q=0.9", "de", "ltr")],
    ids=["arabic", "german"],
)
def test_an_invalid_link_speaks_the_browsers_language_and_gives_the_phone(
    live_server, browser, screenshot, accept_language, lang, direction
):
    context = browser.new_context(
        viewport=SIZES["phone"], extra_http_headers={"Accept-Language": accept_language}
    )
    try:
        page = context.new_page()
        response = page.goto(live_server.url("/p/not-a-real-link"))
        assert response is not None and response.status == 404
        html = page.locator("html")
        expect(html).to_have_attribute("lang", lang)
        expect(html).to_have_attribute("dir", direction)
        heading = said(live_server, lang, "This link is not valid or has expired.")
        expect(page.get_by_role("heading", level=1)).to_have_text(heading)
        phone = live_server.app.config["CRM"]["HOSPITAL_PHONE"]
        expect(page.locator("footer a[href^='tel:']")).to_have_text(phone)
        screenshot("invalid", page=page)
        assert not scrolls_sideways(page)
    finally:
        context.close()

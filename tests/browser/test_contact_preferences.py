"""How we contact you, in a real browser at phone width: the patient switches SMS off and on
on their private page (English, and Arabic right to left), and unsubscribes from email by
the email's link, keeps receiving emails after all, and sees it on the page."""

from __future__ import annotations

import re
from itertools import count

import pytest

from crm.messaging.models import InboundMessage
from crm.patients.links import unsubscribe_url
from tests.browser.conftest import SCREENSHOTS
from tests.browser.harness import SIZES, expect, scrolls_sideways
from tests.browser.patients import token_of

pytestmark = pytest.mark.browser

_numbers = count(1)


def _patient(live_server, language: str, name: str, whatsapp: bool = True) -> dict:
    """A patient with a phone and an email, SMS and email on; one who wrote to us on
    WhatsApp has that channel offered too."""
    n = next(_numbers)
    with live_server.data() as factory:
        patient = {
            "given_name": name,
            "language": language,
            "phone": f"+4915177{n:06d}",
            "email": f"{name.lower()}{n}@patient.example",
        }
        referral = factory.referral(factory.agency(f"Contact Travel {n}"), patient=patient)
        if whatsapp:
            factory.session.add(
                InboundMessage(
                    provider_id=f"SMcontact{n}",
                    from_address=patient["phone"],
                    channel="whatsapp",
                    body="Merhaba",
                    classification="reply",
                    patient_id=referral.patient_id,
                )
            )
        link = unsubscribe_url(referral.patient_id)
        return {
            "token": token_of(referral),
            "unsubscribe": "/unsubscribe/" + link.split("/unsubscribe/", 1)[1],
            "email": patient["email"],
        }


def _section_shot(page, name: str) -> None:
    """The section alone, beside the full-page shots, to read it at a glance."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.locator("#contact").screenshot(path=SCREENSHOTS / f"contact-section--{name}.png")


@pytest.mark.parametrize(
    ("language", "words"),
    [
        (
            "en",
            {
                "heading": "How we contact you",
                "off": "Turn off SMS messages",
                "on": "Turn on SMS messages",
                "saved": "Your choice has been saved.",
                "state_off": "Off",
            },
        ),
        (
            "ar",
            {
                "heading": "كيف نتواصل معك",
                "off": "إيقاف الرسائل النصية",
                "on": "تشغيل الرسائل النصية",
                "saved": "تم حفظ اختيارك.",
                "state_off": "متوقف",
            },
        ),
    ],
    ids=["english", "arabic"],
)
def test_the_patient_switches_sms_off_and_on_again_at_phone_width(
    live_server, browser_page, screenshot, language, words
):
    case = _patient(live_server, language, "Layla" if language == "ar" else "Emma")
    page = browser_page
    page.set_viewport_size(SIZES["phone"])
    page.goto(live_server.url(f"/p/{case['token']}#contact"))
    section = page.locator("#contact")
    expect(section.get_by_role("heading", name=words["heading"])).to_be_visible()
    expect(section.locator(".channel")).to_have_count(3)  # SMS, WhatsApp, email
    expect(page.locator("html")).to_have_attribute("dir", "rtl" if language == "ar" else "ltr")
    assert not scrolls_sideways(page)
    section.scroll_into_view_if_needed()
    screenshot("section", sizes=("phone",))
    _section_shot(page, f"{language}-all-on")

    section.get_by_role("button", name=words["off"]).click()
    expect(page).to_have_url(re.compile(r"done=contact"))
    expect(section.get_by_role("status")).to_have_text(words["saved"])
    sms = section.locator("#contact-sms")
    expect(sms.locator(".state")).to_have_text(words["state_off"])
    expect(sms.get_by_role("button", name=words["on"])).to_be_visible()
    assert not scrolls_sideways(page)
    screenshot("sms-off", sizes=("phone",))
    _section_shot(page, f"{language}-sms-off")

    sms.get_by_role("button", name=words["on"]).click()
    expect(sms.get_by_role("button", name=words["off"])).to_be_visible()


def test_the_patient_unsubscribes_by_the_emails_link_and_keeps_receiving_emails_after_all(
    live_server, browser_page, screenshot
):
    case = _patient(live_server, "en", "Emma", whatsapp=False)
    page = browser_page
    page.set_viewport_size(SIZES["phone"])
    page.goto(live_server.url(case["unsubscribe"]))
    expect(
        page.get_by_role("heading", name="Stop receiving emails about your enquiry?")
    ).to_be_visible()
    expect(page.get_by_text(case["email"])).to_be_visible()
    screenshot("asking", sizes=("phone",))

    page.get_by_role("button", name="Unsubscribe").click()
    expect(page.get_by_role("heading", name="You are unsubscribed")).to_be_visible()
    expect(page.get_by_role("status")).to_have_text("You will not receive our emails any more.")
    assert not scrolls_sideways(page)
    screenshot("unsubscribed", sizes=("phone",))

    private = page.context.new_page()  # the private page, in another tab
    private.set_viewport_size(SIZES["phone"])
    private.goto(live_server.url(f"/p/{case['token']}#contact"))
    email = private.locator("#contact-email")
    expect(email.locator(".state")).to_have_text("Off")
    expect(email.get_by_role("button", name="Turn on emails")).to_be_visible()

    page.get_by_role("button", name="Keep receiving emails").click()
    expect(page.get_by_role("heading", name="You are subscribed again")).to_be_visible()
    screenshot("subscribed-again", sizes=("phone",))

    private.reload()
    expect(email.locator(".state")).to_have_text("On")


def test_the_unsubscribe_page_in_arabic_reads_right_to_left(live_server, browser_page, screenshot):
    case = _patient(live_server, "ar", "Layla", whatsapp=False)
    page = browser_page
    page.set_viewport_size(SIZES["phone"])
    page.goto(live_server.url(case["unsubscribe"]))
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    page.get_by_role("button", name="إلغاء الاشتراك").click()
    expect(page.get_by_role("heading", name="تم إلغاء اشتراكك")).to_be_visible()
    expect(page.get_by_role("button", name="الاستمرار في تلقي الرسائل")).to_be_visible()
    assert not scrolls_sideways(page)
    screenshot("unsubscribed", sizes=("phone",))

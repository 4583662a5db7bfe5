"""The conversation in a real browser: the patient writes on the private page (English, at
phone width), the coordinator sees one unread message on the board and on the referral
page, answers, and the patient reads the answer; the same in Arabic, right to left."""

from __future__ import annotations

import re
from itertools import count

import pytest

from crm.auth import operations as auth
from crm.auth.signin import staff_actor
from crm.conversation.operations import answer_patient
from crm.referrals.models import Referral
from tests.browser.harness import SIZES, expect, scrolls_sideways
from tests.browser.patients import token_of

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery staple"
QUESTION = "Can my husband stay with me in the hospital room?"
ANSWER = "Yes: a companion bed is included. Please tell us his name before you travel."
_numbers = count(1)


def _case(live_server, language: str, name: str) -> dict:
    n = next(_numbers)
    email = f"conversation.coordinator{n}@hospital.example"
    with live_server.data() as factory:
        auth.create_staff_user(email, "Elif Kaya", "coordinator", PASSWORD)
        agency = factory.agency(f"Conversation Travel {n}")
        patient = {
            "given_name": name,
            "family_name": "Patient",
            "language": language,
            "phone": f"+4915166{n:06d}",
            "time_zone": "Europe/Berlin",
        }
        referral = factory.referral(agency, patient=patient)
        return {
            "email": email,
            "token": token_of(referral),
            "referral_id": referral.id,
            "reference": referral.reference,
            "agency_id": agency.actor.agency_id,
        }


def _sign_in(page, live_server, email: str) -> None:
    page.goto(live_server.url("/console/sign-in"))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def test_the_patient_writes_the_coordinator_answers_and_the_patient_reads_it(
    live_server, browser, browser_page, screenshot
):
    case = _case(live_server, "en", "Emma")
    patient = browser_page
    patient.set_viewport_size(SIZES["phone"])
    patient.goto(live_server.url(f"/p/{case['token']}"))
    expect(patient.get_by_role("heading", name="Messages with your coordinator")).to_be_visible()
    patient.get_by_label("Write to your coordinator").fill(QUESTION)
    screenshot("patient-writing", sizes=("phone",))
    patient.get_by_role("button", name="Send message").click()
    expect(patient).to_have_url(re.compile(r"done=message"))
    expect(patient.get_by_role("status")).to_contain_text("Your message has been sent.")
    thread = patient.locator("#conversation .thread")
    expect(thread).to_contain_text(QUESTION)
    expect(thread).to_contain_text("You")
    assert not scrolls_sideways(patient)
    screenshot("patient-wrote", sizes=("phone",))

    context = browser.new_context(viewport=SIZES["laptop"])
    coordinator = context.new_page()
    try:
        _sign_in(coordinator, live_server, case["email"])
        coordinator.goto(live_server.url("/console/today"))
        unread = coordinator.locator(".today-unread")
        expect(unread).to_contain_text(case["reference"])
        expect(unread.get_by_role("link", name=case["reference"])).to_be_visible()
        screenshot("today-unread", page=coordinator)
        coordinator.goto(live_server.url(f"/console/board?agency={case['agency_id']}"))
        card = coordinator.get_by_role("listitem", name=case["reference"])
        expect(card).to_contain_text("1 unread message from the patient")
        screenshot("board-unread", page=coordinator)

        coordinator.goto(live_server.url(f"/console/referrals/{case['referral_id']}"))
        conversation = coordinator.locator("#conversation")
        expect(conversation).to_contain_text("1 new")
        expect(conversation).to_contain_text(QUESTION)
        screenshot("referral-unread", page=coordinator)
        coordinator.get_by_label("Your answer").fill("Does the pain wake you at night?")
        coordinator.get_by_label(re.compile("Put the text itself in the SMS")).check()
        coordinator.get_by_role("button", name="Send answer").click()
        expect(coordinator.get_by_role("alert")).to_contain_text(
            "an SMS may not carry health detail or prices: it says 'pain'"
        )
        expect(coordinator.get_by_label("Your answer")).to_have_value(
            "Does the pain wake you at night?"
        )
        screenshot("free-text-refused", page=coordinator)
        coordinator.get_by_label(re.compile("Put the text itself in the SMS")).uncheck()
        coordinator.get_by_label("Your answer").fill(ANSWER)
        coordinator.get_by_role("button", name="Send answer").click()
        expect(coordinator.get_by_role("status")).to_contain_text("Answer sent")
        expect(conversation).to_contain_text(ANSWER)
        expect(conversation).not_to_contain_text("1 new")
        screenshot("referral-answered", page=coordinator)
        coordinator.goto(live_server.url(f"/console/board?agency={case['agency_id']}"))
        card = coordinator.get_by_role("listitem", name=case["reference"])
        expect(card).not_to_contain_text("unread")
    finally:
        context.close()

    patient.goto(live_server.url(f"/p/{case['token']}"))
    expect(thread).to_contain_text(ANSWER)
    expect(thread).to_contain_text("Elif Kaya, your coordinator")
    screenshot("patient-reads-the-answer", sizes=("phone", "laptop"))


def test_an_arabic_patient_reads_the_thread_right_to_left(live_server, browser_page, screenshot):
    case = _case(live_server, "ar", "Layla")
    page = browser_page
    page.set_viewport_size(SIZES["phone"])
    page.goto(live_server.url(f"/p/{case['token']}"))
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    expect(page.get_by_role("heading", name="الرسائل مع منسّقك")).to_be_visible()
    page.get_by_label("اكتب إلى منسّقك").fill("هل يمكن لزوجي البقاء معي في الغرفة؟")
    page.get_by_role("button", name="إرسال الرسالة").click()
    expect(page.get_by_role("status")).to_contain_text("تم إرسال رسالتك.")
    with live_server.data() as factory:
        referral = factory.session.get(Referral, case["referral_id"])
        user = auth.create_staff_user(
            f"answer.{case['email']}", "Elif Kaya", "coordinator", PASSWORD
        )
        answer_patient(referral, "نعم، سرير المرافق مشمول.", staff_actor(user))
    page.reload()
    thread = page.locator("#conversation .thread")
    expect(thread).to_contain_text("نعم، سرير المرافق مشمول.")
    expect(thread).to_contain_text("Elif Kaya، منسّقك")
    assert not scrolls_sideways(page)
    screenshot("arabic-thread", sizes=("phone", "laptop"))

"""A coordinator finds a referral by its R-number from the header, opens the board, moves
the card on, and meets a guard's refusal in words when moving it further."""

from __future__ import annotations

from datetime import timedelta
from itertools import count

import pytest

from crm.auth import operations as auth
from crm.conversation.operations import post_patient_message
from crm.core.actors import Actor
from crm.core.db import utcnow
from crm.tasks.operations import open_task
from tests.browser.harness import SIZES, expect, scrolls_sideways

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery staple"
_numbers = count(1)


def _coordinator_and_referral(live_server) -> tuple[str, int, str]:
    n = next(_numbers)
    email = f"board.coordinator{n}@hospital.example"
    with live_server.data() as factory:
        auth.create_staff_user(email, "Elif Board", "coordinator", PASSWORD)
        agency = factory.agency(f"Anatolia Patient Services {n}")
        referral = factory.referral(
            agency, patient={"given_name": "Ayse", "family_name": "Yilmaz", "language": "tr"}
        )
        for n in range(4):  # company on the board
            factory.referral(agency, patient={"given_name": "Hans", "family_name": f"Board{n}"})
        return email, referral.id, referral.reference


def _sign_in(page, live_server, email: str) -> None:
    page.goto(live_server.url("/console/sign-in"))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def _move(page, reference: str, stage_label: str, shot=None) -> None:
    card = page.get_by_role("listitem", name=reference)
    card.get_by_text(f"Move {reference}").click()
    card.get_by_label("Move to").select_option(label=stage_label)
    if shot:
        shot()
    card.get_by_role("button", name="Move").click()


def test_a_coordinator_finds_a_referral_moves_it_on_the_board_and_meets_a_guard(
    live_server, browser_page, screenshot
):
    page = browser_page
    email, referral_id, reference = _coordinator_and_referral(live_server)
    _sign_in(page, live_server, email)

    # the header's search box, with the R-number however typed
    page.get_by_role("search").get_by_label("Search referrals").fill(reference.lower())
    page.get_by_role("search").get_by_role("button", name="Search").click()
    expect(page).to_have_url(live_server.url(f"/console/referrals/{referral_id}"))
    expect(page.get_by_role("heading", name="Ayse Yilmaz")).to_be_visible()

    page.get_by_role("navigation").get_by_role("link", name="Board").click()
    expect(page.get_by_role("heading", name="Pipeline board")).to_be_visible()
    enquiry = page.locator("section").filter(has=page.get_by_role("heading", name="Enquiry"))
    card = page.get_by_role("listitem", name=reference)
    expect(card).to_contain_text("AY")
    expect(card).not_to_contain_text("Yilmaz")  # boards hang on walls: initials only
    expect(enquiry.get_by_role("listitem", name=reference)).to_be_visible()
    screenshot("board", sizes=("laptop", "tablet"))

    _move(page, reference, "Awaiting MRI")
    expect(page.get_by_role("status")).to_contain_text(f"{reference} moved to Awaiting MRI.")
    awaiting = page.locator("section").filter(has=page.get_by_role("heading", name="Awaiting MRI"))
    expect(awaiting.get_by_role("listitem", name=reference)).to_be_visible()

    _move(page, reference, "MRI review", lambda: screenshot("move-form", sizes=("tablet",)))
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Not done: an MRI study must be uploaded")
    expect(alert).to_contain_text(f"{reference} was not moved: it stays in Awaiting MRI.")
    expect(awaiting.get_by_role("listitem", name=reference)).to_be_visible()
    screenshot("refused", sizes=("laptop", "tablet"))


def _late_with_an_alert_and_a_reply(live_server) -> str:
    with live_server.data() as factory:
        referral = factory.referral(
            factory.agency(f"Baltic Health Partners {next(_numbers)}"),
            patient={"given_name": "Marta", "family_name": "Ozola", "language": "lv"},
        )
        referral.stage_entered_at = utcnow() - timedelta(days=3, hours=2)
        open_task(referral, "URGENT follow-up alert", "alert", priority="urgent")
        post_patient_message(
            referral,
            "Can I bring my MRI on a CD?",
            Actor("patient", referral.patient_id, "patient (link)"),
        )
        return referral.reference


def test_the_board_marks_lateness_alerts_and_replies_in_words_and_scrolls_in_its_region(
    live_server, browser_page, screenshot
):
    page = browser_page
    email, _, _ = _coordinator_and_referral(live_server)
    reference = _late_with_an_alert_and_a_reply(live_server)
    _sign_in(page, live_server, email)
    page.goto(live_server.url("/console/board"))
    card = page.get_by_role("listitem", name=reference)
    expect(card).to_contain_text("SLA breached: late by 2 d")
    expect(card).to_contain_text("Urgent alert open")
    expect(card).to_contain_text("1 unread message from the patient")
    for size in ("laptop", "tablet"):
        page.set_viewport_size(SIZES[size])
        assert not scrolls_sideways(page), f"the page itself scrolls sideways at {size}"
    region = page.get_by_role("region", name="Pipeline columns, scroll sideways for more")
    region.focus()  # reachable by keyboard, so arrow keys scroll it
    expect(region).to_be_focused()
    screenshot("markers", sizes=("laptop", "tablet"))

    page.get_by_role("search").get_by_label("Search referrals").fill("hans")
    page.get_by_role("search").get_by_role("button", name="Search").click()
    expect(page.get_by_role("heading", name="Results")).to_be_visible()
    expect(page.get_by_role("table")).to_contain_text("Hans Board0")
    screenshot("search", sizes=("laptop", "tablet"))

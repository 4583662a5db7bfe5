"""The clinical forms in a real browser: a specialist reviews the MRI, a coordinator builds
and offers a plan and sees it among the versions; travel is booked and the stay recorded."""

from __future__ import annotations

from datetime import date, timedelta
from itertools import count

import pytest
from sqlalchemy import select

from crm.auth import operations as auth
from crm.plans.models import TreatmentPlan
from crm.plans.operations import accept_plan, offer_plan
from crm.plans.schemas import PlanArgs
from tests.browser.harness import expect, scrolls_sideways
from tests.plans.support import CONSENTS, in_review, patient_of, plan_body, reviewed_as_candidate

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery staple"
TABLET = {"width": 768, "height": 1024}
_numbers = count(1)


def _user(live_server, role: str, name: str) -> str:
    email = f"browser.{role}.plan{next(_numbers)}@hospital.example"
    with live_server.data() as factory:
        auth.create_staff_user(email, name, role, PASSWORD)
        factory.session.commit()
    return email


def _sign_in(page, live_server, email: str) -> None:
    page.goto(live_server.url("/console/sign-in"))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def _referral_in_review(live_server) -> int:
    with live_server.data() as factory:
        referral = in_review(factory, factory.agency(), factory.staff("coordinator"))
        return referral.id


def _referral_with_accepted_plan(live_server) -> int:
    with live_server.data() as factory:
        coordinator = factory.staff("coordinator")
        referral = reviewed_as_candidate(factory, factory.agency(), coordinator)
        offer_plan(referral, PlanArgs().load(plan_body()), coordinator.actor)
        plan = factory.session.scalar(
            select(TreatmentPlan).where(TreatmentPlan.referral_id == referral.id)
        )
        accept_plan(plan, dict(CONSENTS), patient_of(referral))
        return referral.id


def test_a_specialist_reviews_and_a_coordinator_offers_a_plan_seen_among_the_versions(
    live_server, browser_page, screenshot
):
    page = browser_page
    referral_id = _referral_in_review(live_server)
    specialist = _user(live_server, "specialist", "Dr. Aylin Browser")
    coordinator = _user(live_server, "coordinator", "Elif Browser")

    _sign_in(page, live_server, specialist)
    page.goto(live_server.url(f"/console/referrals/{referral_id}"))
    page.get_by_role("link", name="Record the review").click()
    expect(page.get_by_role("heading", name="MRI on file")).to_be_visible()
    expect(page.locator(".studies")).to_contain_text("LSPINE")
    page.get_by_label("Candidate", exact=True).check()
    page.get_by_label("Findings").fill("Paracentral L5-S1 herniation compressing the S1 root")
    page.get_by_label("Disc level").select_option("L5-S1")
    page.get_by_label("Recommended procedure").select_option("microdiscectomy")
    page.get_by_label("Risks to discuss with the patient").fill("infection, recurrence, dural tear")
    screenshot("review-form", sizes=("laptop",))
    page.get_by_role("button", name="Record the review").click()
    expect(page.get_by_role("status")).to_contain_text("Review recorded: Candidate.")
    expect(page.locator(".latest-review")).to_contain_text("Latest review: Candidate, L5-S1")
    page.get_by_role("button", name="Sign out").click()

    _sign_in(page, live_server, coordinator)
    page.goto(live_server.url(f"/console/referrals/{referral_id}"))
    page.get_by_role("link", name="Build and offer a plan").click()
    page.get_by_label("Hospital", exact=True).fill("Istanbul Spine Centre")
    page.get_by_label("Surgeon").fill("Op. Dr. Kaya")
    page.get_by_label("Currency").select_option("EUR")
    page.get_by_label("Item 1: kind").select_option("surgery")
    page.get_by_label("Item 1: description").fill("Microdiscectomy, surgeon and theatre")
    page.get_by_label("Item 1: unit price").fill("6500.50")
    page.get_by_label("Item 2: kind").select_option("hospital_night")
    page.get_by_label("Item 2: description").fill("Hospital night, private room")
    page.get_by_label("Item 2: quantity").fill("2")
    page.get_by_label("Item 2: unit price").fill("300")
    page.get_by_label("Deposit").fill("1000")
    page.get_by_label("Valid until").fill((date.today() + timedelta(days=30)).isoformat())
    page.get_by_label("Included", exact=True).fill("surgery\nanaesthesia\nhospital stay")
    page.get_by_label("Not included").fill("flights")
    screenshot("plan-form", sizes=("laptop",))
    page.set_viewport_size(TABLET)
    assert not scrolls_sideways(page)
    screenshot("plan-form--tablet")
    page.set_viewport_size({"width": 1366, "height": 768})
    page.get_by_label("Item 1: unit price").fill("6500.505")
    page.get_by_role("button", name="Offer this plan to the patient").click()
    expect(page.locator("#items-0-amount-error")).to_have_text(
        "has more decimals than EUR has: at most 2 decimal(s)"
    )
    expect(page.get_by_label("Item 2: description")).to_have_value("Hospital night, private room")
    screenshot("plan-form-refused", sizes=("laptop",))
    page.get_by_label("Item 1: unit price").fill("6500.50")
    page.get_by_role("button", name="Offer this plan to the patient").click()

    expect(page.get_by_role("heading", name="Plan versions")).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("total €7,100.50")
    table = page.get_by_role("table")
    expect(table).to_contain_text("Version 1")
    expect(table).to_contain_text("Microdiscectomy, surgeon and theatre")
    expect(table).to_contain_text("2 \u00d7 €300.00 = €600.00")  # multiplication sign
    expect(table).to_contain_text("first version")

    page.get_by_role("link", name="Offer a new version").click()
    expect(page.get_by_label("Item 1: unit price")).to_have_value("6500.50")
    page.get_by_label("Item 1: unit price").fill("6000")
    page.get_by_role("button", name="Offer this plan to the patient").click()
    expect(table).to_contain_text("Version 2")
    expect(table).to_contain_text("superseded")
    expect(table).to_contain_text("total: €7,100.50 → €6,600.00")
    expect(table).to_contain_text("item 1: 1 \u00d7 €6,500.50 → 1 \u00d7 €6,000.00")
    screenshot("plan-versions", sizes=("laptop",))


def test_a_coordinator_books_travel_and_an_admission_before_landing_is_refused_in_words(
    live_server, browser_page, screenshot
):
    page = browser_page
    referral_id = _referral_with_accepted_plan(live_server)
    _sign_in(page, live_server, _user(live_server, "coordinator", "Elif Travel"))
    page.goto(live_server.url(f"/console/referrals/{referral_id}"))
    page.get_by_role("link", name="Book travel").click()
    page.get_by_label("Admission (hospital's local time)").fill("2030-04-02T08:00")
    for direction, number, there, back, departs, arrives in (
        ("inbound", "TK1588", "FRA", "IST", "2030-03-31T10:00", "2030-03-31T14:10"),
        ("outbound", "TK1589", "IST", "FRA", "2030-04-07T16:00", "2030-04-07T18:10"),
    ):
        prefix = f"#flights-{direction}-"
        page.locator(prefix + "flight_number").fill(number)
        page.locator(prefix + "departure_airport").fill(there)
        page.locator(prefix + "departs_at").fill(departs)
        page.locator(prefix + "arrival_airport").fill(back)
        page.locator(prefix + "arrives_at").fill(arrives)
    page.get_by_label("Hotel", exact=True).fill("Hotel Bosphorus")
    page.get_by_label("Companion's name").fill("Anna Weber")
    page.get_by_label("Companion's passport country").fill("DE")
    page.get_by_label("A visa invitation letter is needed").check()
    screenshot("trip-form", sizes=("laptop",))
    page.get_by_role("button", name="Book travel").click()

    expect(page.get_by_role("status")).to_contain_text("Travel booked.")
    expect(page.get_by_role("link", name="Change travel")).to_be_visible()
    screenshot("referral-clinical-actions", sizes=("laptop",))
    page.get_by_role("button", name="Record admission").click()  # now: before the flight
    expect(page.get_by_role("heading", name="Record admission")).to_be_visible()
    expect(page.locator("#at-error")).to_contain_text("may not be before the inbound flight lands")
    screenshot("admission-refused", sizes=("laptop",))

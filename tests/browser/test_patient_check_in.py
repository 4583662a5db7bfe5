"""A knee replacement patient's follow-up check-in in a real browser, at phone width, in
Arabic (right to left) and English: the knee's own questions from the catalogue, and a
calf that hurts (a possible clot) tells the patient to call."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

from crm.catalogue.queries import procedure_by_code
from crm.core.db import utcnow
from crm.plans.operations import accept_plan, offer_plan
from crm.plans.queries import current_plan
from crm.plans.schemas import PlanArgs
from crm.referrals.models import Referral
from crm.referrals.operations import move_to_stage
from crm.reviews.operations import record_review
from crm.travel import operations as travel
from crm.travel.schemas import TripArgs
from tests.browser.harness import SIZES, expect, scrolls_sideways
from tests.browser.patients import token_of
from tests.factories import Factory
from tests.plans.support import CONSENTS, patient_of, plan_body
from tests.reviews.test_review_fields import KNEE_CANDIDATE
from tests.travel.support import trip_around

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser

HEADINGS = {"en": "How are you doing?", "ar": "كيف حالك؟"}
SEND = {"en": "Send", "ar": "إرسال"}
CALL_NOW = {"en": "Please call us now", "ar": "يرجى الاتصال بنا الآن"}


def knee_home_after_surgery(factory: Factory, language: str) -> Referral:
    """Through every guard: reviewed, plan accepted, trip booked, admitted, discharged an
    hour ago; the knee's first check-in is open on the page."""
    agency, coordinator = factory.agency(), factory.staff("coordinator")
    patient = {"language": language, "given_name": {"en": "Emma", "ar": "Layla"}[language]}
    referral = factory.referral(
        agency, procedure="knee_replacement", patient=patient, intake={"complaints": []}
    )
    move_to_stage(referral, "awaiting_mri", coordinator.actor)
    move_to_stage(referral, "mri_review", coordinator.actor)  # a knee needs no MRI
    record_review(referral, dict(KNEE_CANDIDATE), factory.staff("specialist").actor)
    offer_plan(
        referral, PlanArgs().load(plan_body(procedure="knee_replacement")), coordinator.actor
    )
    accept_plan(current_plan(referral.id), dict(CONSENTS), patient_of(referral))
    discharged_at = utcnow() - timedelta(hours=1)
    admitted_at = discharged_at - timedelta(days=3)
    leaves = admitted_at + timedelta(days=13)  # 3 nights in hospital and 7 in the city
    outbound = {
        "departs_at": leaves.isoformat(),
        "arrives_at": (leaves + timedelta(hours=4)).isoformat(),
    }
    trip = trip_around(admitted_at, outbound=outbound)
    travel.book_trip(referral, TripArgs().load(trip), coordinator.actor)
    travel.record_admission(referral, admitted_at, coordinator.actor)
    travel.record_discharge(referral, discharged_at, coordinator.actor)
    factory.session.commit()
    assert referral.stage == "post_op"
    return referral


def _labels(language: str) -> dict[str, str]:
    """The knee's questions in `language`, as the catalogue has them."""
    form = procedure_by_code("knee_replacement").check_in_form
    labels = {q.code: q.label_in(language) for q in form.questions}
    for question in form.questions:
        for code, label in question.options_in(language):
            labels[f"{question.code}.{code}"] = label
    return labels


@pytest.mark.parametrize(
    ("language", "direction"), [("ar", "rtl"), ("en", "ltr")], ids=["arabic", "english"]
)
def test_a_knee_patient_answers_the_check_in_at_phone_width(
    live_server, browser_page, screenshot, language, direction
):
    with live_server.data() as factory:
        token = token_of(knee_home_after_surgery(factory, language))
        words = _labels(language)
    page: Page = browser_page
    page.set_viewport_size(SIZES["phone"])
    assert page.goto(live_server.url(f"/p/{token}")).status == 200
    expect(page.locator("html")).to_have_attribute("dir", direction)
    expect(page.get_by_role("heading", name=HEADINGS[language])).to_be_visible()
    expect(page.get_by_text(words["calf_pain_or_swelling"])).to_be_visible()
    expect(page.locator('[name="back_pain"]')).to_have_count(0)  # no spine question
    page.get_by_label(words["knee_pain"]).fill("4")
    page.get_by_label(words["knee_swelling"]).select_option(
        label=words["knee_swelling.about_the_same"]
    )
    page.get_by_label(words["wound"]).select_option(label=words["wound.healing_well"])
    page.get_by_label(words["knee_bend"]).select_option(label=words["knee_bend.right_angle"])
    page.get_by_label(words["calf_pain_or_swelling"]).check()
    screenshot("knee-check-in", sizes=("phone",))
    assert not scrolls_sideways(page)
    page.get_by_role("button", name=SEND[language], exact=True).click()
    expect(page).to_have_url(re.compile(r"done=urgent"))
    expect(page.get_by_text(re.compile(CALL_NOW[language]))).to_be_visible()
    expect(page.get_by_role("heading", name=HEADINGS[language])).to_have_count(0)
    screenshot("call-us", sizes=("phone",))

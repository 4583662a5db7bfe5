"""A manager records a refund on the console: from the referral page to its refunds, a
refused amount said beside the field, then the refund recorded with the commission it
reversed."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from crm.commission.ledger import accrue
from crm.commission.operations import create_contract
from crm.core.actors import SYSTEM
from crm.core.db import utcnow
from crm.plans.models import TreatmentPlan
from crm.plans.operations import accept_plan, offer_plan
from crm.plans.schemas import PlanArgs
from crm.referrals.models import Referral
from crm.referrals.operations import move_to_stage
from crm.reviews.operations import record_review
from tests.browser.harness import expect
from tests.browser.test_commission_pages import _manager, _sign_in
from tests.plans.support import CANDIDATE, CONSENTS, patient_of, plan_body, upload_sample_mri

pytestmark = pytest.mark.browser


def _accrued_referral(live_server) -> tuple[int, str]:
    """An agency's referral with an accepted plan (€7,100.00) and 10% commission accrued."""
    with live_server.data() as factory:
        coordinator = factory.staff("coordinator")
        agency = factory.agency("Nordlicht Medical Travel")
        create_contract(
            agency.actor.agency_id,
            {"kind": "percentage", "basis_points": 1000, "effective_from": utcnow().date()},
            SYSTEM,
        )
        # a person of their own: the default patient, sent before by other tests' agencies
        # on this shared server, would be attributed to the first of them (no contract)
        referral = factory.referral(
            agency,
            patient={
                "given_name": "Ingrid",
                "family_name": "Refundsen",
                "phone": "+4915170990001",
                "email": "ingrid.refundsen@patient.example",
                "date_of_birth": "1969-04-05",
            },
        )
        move_to_stage(referral, "awaiting_mri", coordinator.actor)
        upload_sample_mri(referral, agency.actor)
        record_review(referral, dict(CANDIDATE), factory.staff("specialist").actor)
        offer_plan(referral, PlanArgs().load(plan_body()), coordinator.actor)
        plan = factory.session.scalar(
            select(TreatmentPlan).where(TreatmentPlan.referral_id == referral.id)
        )
        accept_plan(plan, dict(CONSENTS), patient_of(referral))
        accrue(factory.session.get(Referral, referral.id))
        return referral.id, referral.reference


def test_a_manager_records_a_refund_from_the_referral_page(live_server, browser_page, screenshot):
    referral_id, reference = _accrued_referral(live_server)
    with live_server.data() as factory:
        email, secret = _manager(factory)
    page = browser_page
    _sign_in(page, live_server, email, secret)
    page.goto(live_server.url(f"/console/referrals/{referral_id}"))
    page.get_by_role("link", name="Refunds on this referral").click()
    expect(page.get_by_role("heading", name=f"Refunds on {reference}")).to_be_visible()
    expect(page.get_by_text("Left to refund: €7,100.00")).to_be_visible()
    page.get_by_label("Amount given back (EUR)").fill("12,50")
    page.get_by_label("Why").fill("second night not needed")
    page.get_by_role("button", name="Record the refund").click()
    expect(page.locator("#amount-error")).to_contain_text("a point for decimals")
    expect(page.get_by_label("Why")).to_have_value("second night not needed")
    screenshot("refused", sizes=("laptop", "phone"))
    page.get_by_label("Amount given back (EUR)").fill("710")
    page.get_by_role("button", name="Record the refund").click()
    expect(
        page.get_by_text("Refund of €710.00 recorded; commission reversed: €71.00.")
    ).to_be_visible()
    row = page.get_by_role("row").filter(has_text="second night not needed")
    expect(row).to_contain_text("€710.00")
    expect(row).to_contain_text("-€71.00")
    expect(page.get_by_text("Left to refund: €6,390.00")).to_be_visible()
    screenshot("recorded", sizes=("laptop",))

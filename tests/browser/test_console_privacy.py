"""A manager (with a second factor) opens a lost referral's privacy page from the referral
page and erases the person through the form; the page then says so."""

from __future__ import annotations

import pytest

from crm.referrals.operations import move_to_stage
from tests.browser.harness import expect, scrolls_sideways
from tests.browser.test_console_reports import _manager, _sign_in

pytestmark = pytest.mark.browser


def test_a_manager_erases_a_lost_referrals_patient(live_server, browser_page, screenshot):
    email, secret = _manager(live_server)
    with live_server.data() as factory:
        referral = factory.referral(
            factory.agency("Privacy Travel"),
            patient={
                "given_name": "Selin",
                "family_name": "Kaya",
                "phone": "+905329990011",
                "email": "selin.kaya@patient.example",
                "date_of_birth": "1975-03-09",
            },
        )
        move_to_stage(referral, "lost", factory.staff("coordinator").actor, reason="price")
        factory.session.commit()
        referral_id = referral.id
    page = browser_page
    _sign_in(page, live_server, email, secret)
    page.goto(live_server.url(f"/console/referrals/{referral_id}"))
    expect(page.get_by_role("button", name="Export the patient's data (ZIP)")).to_be_visible()
    page.get_by_role("link", name="Erasure and legal hold").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Selin Kaya")
    page.get_by_label("Reason (the request's reference)").fill("request DSR-2026-014 by email")
    page.get_by_label("Type erase to confirm").fill("erase")
    screenshot("privacy-form", sizes=("laptop", "phone"))
    assert not scrolls_sideways(page)
    page.get_by_role("button", name="Erase this person").click()
    expect(page.get_by_role("status").first).to_contain_text("Erased: 1 patient record(s)")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Erased patient")
    screenshot("privacy-erased")

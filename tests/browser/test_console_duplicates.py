"""The Duplicates page in a real browser: a coordinator compares a likely duplicate side by
side and links it, or merges one after reading what the merge will do; the page then no
longer shows it."""

from __future__ import annotations

from itertools import count

import pytest

from crm.auth import operations as auth
from crm.duplicates.models import DuplicateMatch
from crm.patients.operations import set_consent
from tests.browser.harness import expect, scrolls_sideways

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery staple"
_numbers = count(1)


def _patient(n: int, given: str, family: str) -> dict:
    return {
        "given_name": given,
        "family_name": family,
        "date_of_birth": "1981-07-15",
        "phone": f"+90532{7000000 + n:07d}",
        "email": f"{given.lower()}.{n}@patient.example",
        "country": "TR",
        "time_zone": "Europe/Istanbul",
        "language": "tr",
    }


def test_a_coordinator_compares_and_links_a_likely_duplicate(live_server, browser_page, screenshot):
    n = next(_numbers)
    email = f"browser.dup{n}@hospital.example"
    with live_server.data() as factory:
        first, second = factory.agency("Anatolia Health"), factory.agency("Aegean Care")
        factory.referral(first, patient=_patient(2 * n, "Jürgen", "Müller"))
        later = factory.referral(second, patient=_patient(2 * n + 1, "Jurgen", "Muller"))
        match_id = factory.session.query(DuplicateMatch.id).filter_by(referral_id=later.id).scalar()
        auth.create_staff_user(email, "Cem Coordinator", "coordinator", PASSWORD)
    page = browser_page
    page.goto(live_server.url("/console/sign-in"))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Today").click()
    page.locator(f'a[href="/console/duplicates#match-{match_id}"]').first.click()
    card = page.locator(f"#match-{match_id}")
    expect(card).to_contain_text("Jürgen Müller")
    expect(card).to_contain_text("Anatolia Health")
    expect(card).to_contain_text("Aegean Care")
    expect(card).to_contain_text("+90*")
    card.scroll_into_view_if_needed()
    screenshot("duplicates", sizes=("laptop", "phone"))
    assert not scrolls_sideways(page)
    card.get_by_role("button", name=f"Link match {match_id}: the same person").click()
    expect(page.get_by_role("status")).to_contain_text("Linked: the same person")
    expect(page.locator(f"#match-{match_id}")).to_have_count(0)


def test_a_coordinator_merges_a_likely_duplicate_after_reading_what_will_happen(
    live_server, browser_page, screenshot
):
    n = next(_numbers) + 100
    email = f"browser.merge{n}@hospital.example"
    with live_server.data() as factory:
        first, second = factory.agency("Bosphorus Clinic"), factory.agency("Lycia Travel")
        known = factory.referral(first, patient=_patient(2 * n, "Ayşe", "Yılmaz"))  # noqa: RUF001 (Turkish dotless i)
        later = factory.referral(second, patient=_patient(2 * n + 1, "Ayse", "Yilmaz"))
        set_consent(later.patient, "sms", False, "sms keyword (SMbrowser)")
        match_id = factory.session.query(DuplicateMatch.id).filter_by(referral_id=later.id).scalar()
        survivor_id, merged_id = known.patient_id, later.patient_id
        auth.create_staff_user(email, "Cem Coordinator", "coordinator", PASSWORD)
    page = browser_page
    page.goto(live_server.url("/console/sign-in"))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto(live_server.url(f"/console/duplicates#match-{match_id}"))
    card = page.locator(f"#match-{match_id}")
    card.get_by_role("button", name=f"Merge match {match_id}: one record (asks first)").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Merge Ayse Yilmaz into")
    expect(page.get_by_text(f"Patient #{survivor_id} (Ayşe Yılmaz) stays")).to_be_visible()  # noqa: RUF001
    expect(page.locator("#consent-sms")).to_contain_text("withdrawn on a row")
    screenshot("merge-confirmation", sizes=("laptop", "phone"))
    assert not scrolls_sideways(page)
    page.get_by_role("button", name=f"Merge #{merged_id} into #{survivor_id}").click()
    expect(page.get_by_role("status")).to_contain_text("Merged: one patient record now")
    expect(page.locator(f"#match-{match_id}")).to_have_count(0)
    screenshot("merged")

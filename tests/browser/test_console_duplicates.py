"""The Duplicates page in a real browser: a coordinator compares a likely duplicate side by
side and links it; the page then no longer shows it."""

from __future__ import annotations

from itertools import count

import pytest

from crm.auth import operations as auth
from crm.duplicates.models import DuplicateMatch
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

"""The agency panel's keys and team pages in a real browser: an agency's user signs in,
creates a key (its secret once), rotates it (the new secret once, and until when the old
one works), revokes one after a confirmation, and invites a colleague."""

from __future__ import annotations

from itertools import count

import pytest

from crm.agencies.models import Agency
from crm.auth import operations as auth
from tests.browser.harness import expect, scrolls_sideways

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery staple"
_numbers = count(1)


def _agency_with_member(live_server, agency_name: str, name: str) -> str:
    email = f"browser.member{next(_numbers)}@agency.example"
    with live_server.data() as factory:
        agency = Agency(name=agency_name, country="DE")
        factory.session.add(agency)
        factory.session.flush()
        auth.issue_agency_key(agency, label="booking system")
        auth.create_agency_user(agency, email, name, PASSWORD)
        auth.create_agency_user(agency, f"x{email}", "Jonas Keller", PASSWORD)
    return email


def _sign_in(page, live_server, email: str) -> None:
    page.goto(live_server.url("/console/sign-in"))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Welcome", exact=False)).to_be_visible()


def test_an_agency_user_creates_rotates_and_revokes_keys(live_server, browser_page, screenshot):
    email = _agency_with_member(live_server, "Rhein Medical Travel", "Greta Vogel")
    page = browser_page
    _sign_in(page, live_server, email)
    assert page.url.endswith("/agency/")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="API keys").click()
    page.get_by_label("Label").fill("reporting script")
    page.get_by_role("button", name="Create a key").click()
    created = page.locator("#new-key").inner_text()
    assert created.startswith("crm_ak_")
    expect(page.get_by_role("status")).to_contain_text("Copy it now")
    screenshot("key-created", sizes=("laptop",))

    first_prefix = page.locator("tbody tr").last.locator("code").inner_text()
    page.get_by_role("button", name=f"Rotate {first_prefix}").click()
    rotated = page.locator("#new-key").inner_text()
    assert rotated.startswith("crm_ak_") and rotated != created
    expect(page.get_by_role("status")).to_contain_text(f"The old key {first_prefix} keeps working")
    expect(page.locator("tbody")).to_contain_text("rotated: works until")
    screenshot("key-rotated", sizes=("laptop", "phone"))
    assert not scrolls_sideways(page)

    page.get_by_role("link", name=f"Revoke {first_prefix}").click()
    expect(page.get_by_role("heading", name=f"Revoke key {first_prefix}?")).to_be_visible()
    screenshot("revoke-confirmation", sizes=("laptop",))
    page.get_by_role("button", name=f"Revoke {first_prefix}").click()
    expect(page.get_by_role("status")).to_contain_text(f"Key {first_prefix} is revoked")
    expect(page.locator("body")).not_to_contain_text(rotated)


def test_an_agency_user_invites_a_colleague_on_the_team_page(live_server, browser_page, screenshot):
    email = _agency_with_member(live_server, "Baltic Health Partners", "Lina Berg")
    page = browser_page
    _sign_in(page, live_server, email)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Team").click()
    page.get_by_label("Name").fill("Mara Sommer")
    page.get_by_label("Email").fill(f"mara{next(_numbers)}@agency.example")
    page.get_by_role("button", name="Send the invitation").click()
    expect(page.get_by_role("status")).to_contain_text("a link to set their password")
    expect(page.locator("tbody")).to_contain_text("Mara Sommer")
    expect(page.locator("tbody")).to_contain_text("invited")
    screenshot("team", sizes=("laptop", "phone"))
    assert not scrolls_sideways(page)
    expect(page.get_by_role("button", name="Deactivate Lina Berg")).to_have_count(0)

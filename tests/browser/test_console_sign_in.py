"""Staff sign in to the console in a real browser; a wrong password is refused in words."""

from __future__ import annotations

from itertools import count

import pytest

from crm.auth import operations as auth
from tests.browser.harness import expect

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery staple"
_numbers = count(1)


def _coordinator(live_server) -> str:
    email = f"browser.coordinator{next(_numbers)}@hospital.example"
    with live_server.data() as factory:
        auth.create_staff_user(email, "Elif Browser", "coordinator", PASSWORD)
        factory.session.commit()
    return email


def _sign_in(page, live_server, email: str, password: str) -> None:
    page.goto(live_server.url("/"))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_a_coordinator_signs_in_and_sees_the_console_with_their_name_and_role(
    live_server, browser_page, screenshot
):
    email = _coordinator(live_server)
    _sign_in(browser_page, live_server, email, PASSWORD)
    expect(browser_page).to_have_url(live_server.url("/console/"))
    expect(browser_page.get_by_role("heading", name="Welcome, Elif Browser")).to_be_visible()
    expect(browser_page.get_by_role("navigation")).to_contain_text("Board")
    screenshot("signed-in", sizes=("laptop",))
    browser_page.get_by_role("button", name="Sign out").click()
    expect(browser_page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_a_wrong_password_is_refused_in_words_and_signs_nobody_in(
    live_server, browser_page, screenshot
):
    email = _coordinator(live_server)
    _sign_in(browser_page, live_server, email, "not the password")
    expect(browser_page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(browser_page.locator("body")).to_contain_text("The email or password is not right.")
    screenshot("refused", sizes=("phone",))
    browser_page.goto(live_server.url("/console/"))
    expect(browser_page.get_by_role("heading", name="Sign in")).to_be_visible()

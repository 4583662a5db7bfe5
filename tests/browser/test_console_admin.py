"""The admin area in a real browser: an admin enrols their authenticator (TOTP in the
browser), issues an agency key and sees its secret once, previews the templates (Arabic
right-to-left), and looks at every admin page at laptop width. And the lockout: a
coordinator who fails the password too often is refused even the right one, in words."""

from __future__ import annotations

from itertools import count

import pyotp
import pytest
from flask import current_app

from crm.agencies.models import Agency
from crm.auth import operations as auth
from crm.nudges.operations import load_rules
from tests.browser.harness import expect, scrolls_sideways
from tests.live import ROOT

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery staple"
TABLET = {"width": 768, "height": 1024}
_numbers = count(1)


def _staff(live_server, role: str, name: str) -> str:
    email = f"browser.{role}{next(_numbers)}@hospital.example"
    with live_server.data() as factory:
        auth.create_staff_user(email, name, role, PASSWORD)
        factory.session.commit()
    return email


def _sign_in(page, live_server, email: str, password: str = PASSWORD) -> None:
    page.goto(live_server.url("/console/sign-in"))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def _admin_enrolled(page, live_server, screenshot=None) -> None:
    """Sign in as a new admin, who must set up an authenticator: read the key off the
    page as a phone would, type the app's code."""
    email = _staff(live_server, "admin", "Aylin Admin")
    _sign_in(page, live_server, email)
    expect(page.get_by_role("heading", name="Set up your authenticator app")).to_be_visible()
    secret = page.locator("code.secret").inner_text().strip()
    page.get_by_label("Code from the app").fill(pyotp.TOTP(secret).now())
    if screenshot:
        screenshot("enrol")
    page.get_by_role("button", name="Turn on").click()
    expect(page.get_by_role("heading", name="Welcome, Aylin Admin")).to_be_visible()


def test_an_admin_enrols_a_second_factor_issues_a_key_and_sees_the_secret_once(
    live_server, browser_page, screenshot
):
    with live_server.data() as factory:
        factory.session.add(Agency(name="Bosphorus Care Partners", country="GB"))
    page = browser_page
    _admin_enrolled(page, live_server, screenshot)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Admin").click()
    page.get_by_role("link", name="Agencies and API keys").click()
    page.get_by_label("Label for a new key", exact=False).last.fill("production system")
    page.get_by_role("button", name="Issue a key for Bosphorus Care Partners").click()
    secret = page.locator("#new-key").inner_text()
    assert secret.startswith("crm_ak_")
    expect(page.get_by_role("status")).to_contain_text("shown only this once")
    screenshot("key-issued", sizes=("laptop",))
    page.goto(live_server.url("/console/admin/agencies"))
    expect(page.locator("body")).not_to_contain_text(secret)
    expect(page.locator("body")).to_contain_text(secret.rsplit("_", 1)[0][:15])


def test_an_admin_previews_a_message_in_every_language_with_arabic_right_to_left(
    live_server, browser_page, screenshot
):
    page = browser_page
    _admin_enrolled(page, live_server)
    page.goto(live_server.url("/console/admin/rules"))
    page.get_by_role("link", name="mri reminder").click()
    for language in ("English", "Turkish", "Arabic", "Russian", "German"):
        expect(page.get_by_role("heading", name=language)).to_be_visible()
    arabic = page.locator("#lang-ar .message-preview")
    expect(arabic).to_have_attribute("dir", "rtl")
    expect(arabic).to_have_attribute("lang", "ar")
    assert arabic.evaluate("e => getComputedStyle(e).direction") == "rtl"
    expect(arabic).to_contain_text("segment")
    arabic.scroll_into_view_if_needed()
    path = screenshot("preview", sizes=("laptop",))[0]
    page.locator("#lang-ar").screenshot(path=path.with_name(path.stem + "--arabic.png"))


def test_an_admin_edits_an_sms_with_a_health_word_and_is_refused_in_words(
    live_server, browser_page, screenshot
):
    page = browser_page
    _admin_enrolled(page, live_server)
    page.goto(live_server.url("/console/admin/templates/mri_reminder"))
    page.locator("#lang-en details summary").click()
    page.locator("#src-en-sms").fill("Please send your MRI: {{ link }}")
    page.get_by_role("button", name="Save SMS (en)").click()
    expect(page.get_by_role("alert")).to_contain_text("an SMS may not carry health detail")
    screenshot("refused", sizes=("laptop",))


@pytest.mark.parametrize(
    "path",
    [
        "",
        "/agencies",
        "/staff",
        "/rules",
        "/rules/mri_missing_reminder",
        "/catalogue",
        "/templates/plan_offered_patient",
    ],
)
def test_each_admin_page_at_laptop_width(live_server, browser_page, screenshot, path):
    with live_server.data():
        load_rules(ROOT / "config" / "nudge_rules.toml")  # as `make run` does
    page = browser_page
    _admin_enrolled(page, live_server)
    page.goto(live_server.url("/console/admin" + path))
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    screenshot("page", sizes=("laptop",))
    assert not scrolls_sideways(page)
    page.set_viewport_size(TABLET)
    screenshot("page-tablet")
    assert not scrolls_sideways(page)


def test_a_coordinator_locked_out_is_refused_even_the_right_password(
    live_server, browser_page, screenshot
):
    email = _staff(live_server, "coordinator", "Lale Locked")
    with live_server.app.app_context():
        limit = current_app.config["CRM"]["SIGN_IN_MAX_FAILURES"]
    page = browser_page
    for _ in range(limit):
        _sign_in(page, live_server, email, "not the password")
    _sign_in(page, live_server, email, PASSWORD)
    expect(page.get_by_role("alert")).to_contain_text("Too many failed sign-ins")
    expect(page.get_by_role("alert")).to_contain_text("Try again in")
    screenshot("locked", sizes=("laptop",))
    page.goto(live_server.url("/console/"))
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()

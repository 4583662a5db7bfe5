"""A manager (with a second factor) opens every report in the console, filters one and
downloads each CSV; a coordinator does not see the agencies report."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from itertools import count
from pathlib import Path

import pyotp
import pytest

from crm.auth import operations as auth
from crm.auth import totp
from crm.auth.signin import staff_actor
from crm.core.db import utcnow
from crm.referrals.operations import move_to_stage
from tests.browser.harness import expect

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery staple"
_numbers = count(1)
PAGES = (
    ("funnel", "Conversion funnel"),
    ("time-in-stage", "Time in stage"),
    ("agencies", "Agency performance"),
    ("messaging", "Messaging"),
    ("sla", "Service levels (SLA)"),
)


def _activity(factory) -> list[str]:
    """Referrals moved along, one lost, one late first response and one still waiting;
    the two agencies' names."""
    coordinator = factory.staff("coordinator")
    agencies = [factory.agency(f"Reports Travel {next(_numbers)}") for _ in range(2)]
    for i in range(6):
        referral = factory.referral(agencies[i % 2])
        began = utcnow() - timedelta(hours=6 + 10 * i)
        referral.history[-1].occurred_at = referral.stage_entered_at = began
        if i < 4:
            move_to_stage(referral, "awaiting_mri", coordinator.actor)
        if i == 3:
            move_to_stage(referral, "lost", coordinator.actor, reason="price")
    factory.session.commit()
    return [caller.actor.label for caller in agencies]


def _manager(live_server) -> tuple[str, str]:
    """A manager enrolled in TOTP through the operations; returns the email and secret."""
    email, secret, _ = _manager_and_agencies(live_server)
    return email, secret


def _manager_and_agencies(live_server) -> tuple[str, str, list[str]]:
    email = f"browser.manager{next(_numbers)}@hospital.example"
    with live_server.data() as factory:
        user = auth.create_staff_user(email, "Mara Manager", "manager", PASSWORD)
        secret = totp.begin_enrolment(user)
        now = pyotp.TOTP(secret)
        totp.confirm_enrolment(user, now.generate_otp(now.timecode(utcnow())), staff_actor(user))
        agencies = _activity(factory)
    return email, secret, agencies


def _sign_in(page, live_server, email: str, secret: str | None = None) -> None:
    page.goto(live_server.url("/console/sign-in"))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    if secret:  # the next step's code: the enrolment used this one
        code = pyotp.TOTP(secret)
        page.get_by_label("Code", exact=True).fill(code.generate_otp(code.timecode(utcnow()) + 1))
        page.get_by_role("button", name="Continue").click()
    expect(page).to_have_url(live_server.url("/console/"))


def test_a_manager_opens_every_report_and_downloads_its_csv(live_server, browser_page, screenshot):
    page = browser_page
    _sign_in(page, live_server, *_manager(live_server))
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Reports").click()
    expect(page.get_by_role("heading", name="Reports", exact=True)).to_be_visible()
    screenshot("index", sizes=("laptop",))
    for name, title in PAGES:
        page.get_by_role("link", name=title, exact=True).click()
        expect(page.get_by_role("heading", name=title, exact=True)).to_be_visible()
        expect(page.locator("figure.report-chart svg")).to_be_visible()
        expect(page.locator("table").first).to_be_visible()
        screenshot(name, sizes=("laptop",))
        with page.expect_download() as download:
            page.get_by_role("link", name="Download CSV").click()
        saved = download.value
        assert saved.suggested_filename == f"{name}.csv"
        rows = list(csv.reader(io.StringIO(Path(saved.path()).read_text(encoding="utf-8"))))
        assert len(rows) > 1, name
        page.get_by_role("link", name="Reports", exact=True).first.click()


def test_a_manager_filters_the_sla_report_by_agency(live_server, browser_page, screenshot):
    page = browser_page
    email, secret, agencies = _manager_and_agencies(live_server)
    _sign_in(page, live_server, email, secret)
    page.goto(live_server.url("/console/reports/sla"))
    chosen = agencies[0]  # its referrals answered late (the live database has other agencies)
    page.get_by_label("Agency").select_option(label=chosen)
    page.get_by_role("button", name="Show the report").click()
    expect(page).to_have_url(re.compile(r"agency_id=\d+"))
    expect(page.get_by_label("Agency").locator("option:checked")).to_have_text(chosen)
    expect(page.locator("table").last).to_contain_text(chosen)
    screenshot("filtered", sizes=("laptop", "phone"))


def test_a_coordinator_has_no_agencies_report(live_server, browser_page, screenshot):
    email = f"browser.reports.coordinator{next(_numbers)}@hospital.example"
    with live_server.data() as factory:
        auth.create_staff_user(email, "Cem Coordinator", "coordinator", PASSWORD)
        factory.session.commit()
    page = browser_page
    _sign_in(page, live_server, email)
    page.goto(live_server.url("/console/reports"))
    expect(page.get_by_role("link", name="Conversion funnel")).to_be_visible()
    expect(page.get_by_role("link", name="Agency performance")).to_have_count(0)
    page.goto(live_server.url("/console/reports/agencies"))
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
    screenshot("refused", sizes=("laptop",))


def test_a_manager_reads_the_audit_trail_of_one_referral(live_server, browser_page, screenshot):
    email, secret = _manager(live_server)
    with live_server.data() as factory:
        referral = factory.referral(factory.agency(f"Audit Travel {next(_numbers)}"))
        reference = referral.reference
    _sign_in(browser_page, live_server, email, secret)
    browser_page.get_by_role("navigation", name="Main").get_by_role("link", name="Audit").click()
    browser_page.get_by_label("Referral", exact=True).fill(reference)
    browser_page.get_by_role("button", name="Show").click()
    expect(browser_page.get_by_role("heading", name="Events, newest first")).to_be_visible()
    expect(browser_page.get_by_role("cell", name="referral.create")).to_be_visible()
    screenshot("audit", sizes=("laptop", "phone"))

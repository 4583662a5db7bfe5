"""Commission in the browser: an agency's user reads its statements in the agency panel
(a month's lines, CSV and PDF), and a manager issues a month's statement in the console."""

from __future__ import annotations

from itertools import count

import pyotp
import pytest

from crm.auth import operations as auth
from crm.auth import totp
from crm.auth.models import StaffUser
from crm.auth.signin import staff_actor
from crm.commission.ledger import accrue, cancel, write
from crm.commission.operations import create_contract, month_of
from crm.core.actors import SYSTEM
from crm.core.db import utcnow
from tests.browser.harness import expect

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery staple"
_numbers = count(1)
MONTH = month_of(utcnow())


def _agency_with_entries(factory, name: str) -> tuple[int, list[str]]:
    """An agency with two contracts (EUR for one procedure, USD for the rest), three
    treated referrals (one cancelled afterwards) and one accrual in USD written straight to
    the ledger (the catalogue here has one procedure); returns its id and the references."""
    caller = factory.agency(name)
    agency_id = caller.actor.agency_id
    contracts = [
        create_contract(
            agency_id,
            {"kind": "fixed", "effective_from": utcnow().date(), **terms},
            SYSTEM,
        )
        for terms in (
            {"amount_minor": 45_000, "currency": "EUR", "procedure_code": "microdiscectomy"},
            {"amount_minor": 30_000, "currency": "USD"},
        )
    ]
    references = []
    for n in range(3):
        referral = factory.referral(
            caller,
            patient={
                "phone": f"+4915170{next(_numbers):06d}",
                "date_of_birth": f"197{n}-01-0{n + 1}",
            },
        )
        accrue(referral)
        if n == 2:
            cancel(referral)
        references.append(referral.reference)
    write(
        "accrued",
        30_000,
        utcnow(),
        f"treatment:{referral.id}:usd",
        agency_id=agency_id,
        referral_id=referral.id,
        contract_id=contracts[1].id,
        currency="USD",
    )
    factory.session.commit()
    return agency_id, references


def _agency_user(factory, agency_id: int) -> str:
    email = f"browser.agent{next(_numbers)}@agency.example"
    user = StaffUser(email=email, name="Leyla Agent", role="agency", agency_id=agency_id)
    auth.set_password(user, PASSWORD)
    factory.session.add(user)
    factory.session.commit()
    return email


def _manager(factory) -> tuple[str, str]:
    email = f"browser.commission.manager{next(_numbers)}@hospital.example"
    user = auth.create_staff_user(email, "Mara Manager", "manager", PASSWORD)
    secret = totp.begin_enrolment(user)
    now = pyotp.TOTP(secret)
    totp.confirm_enrolment(user, now.generate_otp(now.timecode(utcnow())), staff_actor(user))
    return email, secret


def _sign_in(page, live_server, email: str, secret: str | None = None) -> None:
    page.goto(live_server.url("/console/sign-in"))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    if secret:
        code = pyotp.TOTP(secret)
        page.get_by_label("Code", exact=True).fill(code.generate_otp(code.timecode(utcnow()) + 1))
        page.get_by_role("button", name="Continue").click()


def test_an_agency_user_reads_a_months_statement_and_downloads_it(
    live_server, browser_page, screenshot
):
    with live_server.data() as factory:
        agency_id, references = _agency_with_entries(factory, "Şifa Sağlık Turizm")  # noqa: RUF001
        email = _agency_user(factory, agency_id)
    page = browser_page
    _sign_in(page, live_server, email)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Statements").click()
    expect(page.get_by_role("heading", name="Commission statements")).to_be_visible()
    expect(page.locator("table")).to_contain_text("draft")
    expect(page.locator("table")).to_contain_text("€900.00")
    expect(page.locator("table")).to_contain_text("$300.00")
    screenshot("list", sizes=("laptop", "phone"))
    page.get_by_role("link", name=MONTH).click()
    expect(page.get_by_text("Draft — not issued.")).to_be_visible()
    for reference in references:
        expect(page.locator("table").first).to_contain_text(reference)
    screenshot("month", sizes=("laptop",))
    with page.expect_download() as download:
        page.get_by_role("link", name="Download PDF").click()
    assert download.value.suggested_filename == f"statement-{agency_id}-{MONTH}.pdf"
    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    assert download.value.suggested_filename == f"statement-{agency_id}-{MONTH}.csv"


def test_a_manager_issues_an_agencys_statement_in_the_console(
    live_server, browser_page, screenshot
):
    with live_server.data() as factory:
        _agency_with_entries(factory, "وكالة الشفاء")
        email, secret = _manager(factory)
    page = browser_page
    _sign_in(page, live_server, email, secret)
    page.goto(live_server.url("/console/reports"))
    page.get_by_role("link", name="Commission", exact=True).click()
    expect(page.get_by_role("heading", name=f"Commission: {MONTH}")).to_be_visible()
    row = page.get_by_role("row").filter(has_text="وكالة الشفاء")
    expect(row).to_contain_text("€450.00 per procedure (microdiscectomy)")
    screenshot("month", sizes=("laptop",))
    row.get_by_role("button", name="Issue").click()
    expect(page.get_by_text("will not change again")).to_be_visible()
    expect(page.get_by_role("row").filter(has_text="وكالة الشفاء")).to_contain_text("issued")
    page.get_by_role("row").filter(has_text="وكالة الشفاء").get_by_role("link", name="View").click()
    expect(page.get_by_text("An issued statement never changes")).to_be_visible()
    screenshot("issued", sizes=("laptop",))

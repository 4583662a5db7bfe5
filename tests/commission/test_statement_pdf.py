"""A month's statement as a PDF: the hospital, the agency, the month, draft or issued, the
lines and the totals per currency; an issued one reads the same every time."""

import io
from datetime import UTC, datetime

import pytest
from pypdf import PdfReader

from crm.commission.pdf import render_statement_pdf
from crm.travel.letter import unicode_font
from tests.commission.support import PLAN_TOTAL, THIS_MONTH, add_contract, treated
from tests.helpers import API, assert_problem

pytestmark = pytest.mark.usefixtures("no_stay_guards")


def _text(response) -> str:
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert response.data.startswith(b"%PDF-")
    reader = PdfReader(io.BytesIO(response.data))
    return " ".join(page.extract_text() for page in reader.pages)


def _url(agency, month=THIS_MONTH):
    return f"{API}/agencies/{agency.actor.agency_id}/statements/{month}?format=pdf"


@pytest.fixture
def accrued(client, factory, agency, coordinator, manager):
    add_contract(client, manager, agency)
    return treated(client, factory, agency, coordinator)


def test_a_draft_statement_pdf_names_the_hospital_the_agency_and_says_it_is_not_issued(
    client, app, manager, agency, accrued
):
    text = _text(client.get(_url(agency), headers=manager.headers()))
    assert app.config["CRM"]["HOSPITAL_NAME"] in text
    assert agency.actor.label in text
    assert f"Commission statement {THIS_MONTH}" in text
    assert "DRAFT - NOT ISSUED" in text


def test_the_pdf_lists_each_line_and_the_totals_per_currency(
    client, factory, agency, coordinator, manager, accrued
):
    treated(client, factory, agency, coordinator, currency="USD")
    text = _text(client.get(_url(agency), headers=manager.headers()))
    assert accrued.reference in text
    amount = f"{PLAN_TOTAL // 10 // 100:,}.00"  # 710.00 in major units
    assert f"€{amount}" in text
    assert f"${amount}" in text
    assert "EUR net" in text and "USD net" in text


def test_an_issued_statement_pdf_is_the_same_on_every_read_and_not_a_draft(
    client, manager, agency, accrued
):
    client.post(
        f"{API}/agencies/{agency.actor.agency_id}/statements/{THIS_MONTH}/issue",
        headers=manager.headers(),
    )
    first = client.get(_url(agency), headers=manager.headers())
    second = client.get(_url(agency), headers=manager.headers())
    assert first.data == second.data
    text = _text(first)
    assert "DRAFT" not in text
    assert "Issued" in text


def test_an_agency_reads_its_own_statement_as_pdf(client, agency, accrued):
    response = client.get(f"{API}/statements/{THIS_MONTH}?format=pdf", headers=agency.headers())
    assert accrued.reference in _text(response)


def test_another_agencys_statement_pdf_is_404(client, factory, agency, accrued):
    other = factory.agency()
    assert_problem(client.get(_url(agency), headers=other.headers()), 404, "not-found")


def test_an_agency_name_in_another_script_prints(client, factory, coordinator, manager, session):
    agency = factory.agency("وكالة الشفاء")
    add_contract(client, manager, agency)
    treated(client, factory, agency, coordinator)
    text = _text(client.get(_url(agency), headers=manager.headers()))
    assert "وكالة الشفاء" in text  # shaped (joined, right to left), read back in logical order


def _long_report(lines: int) -> dict:
    entry = {
        "kind": "accrued",
        "reason": "treatment",
        "amount_minor": 71000,
        "currency": "EUR",
        "created_at": datetime(2026, 11, 3, 9, 30, tzinfo=UTC),
    }
    total = {
        "currency": "EUR",
        **dict.fromkeys(("accrued_minor", "net_minor"), 71000 * lines),
        **dict.fromkeys(("reversed_minor", "payable_minor"), 0),
    }
    return {
        "status": "draft",
        "issued_at": None,
        "month": "2026-11",
        "agency_name": "Agentur Nord",
        "lines": [{**entry, "reference": f"R-2026-{n:05d}"} for n in range(1, lines + 1)],
        "totals": [total],
    }


@pytest.mark.parametrize("font", [None, unicode_font()], ids=["core font", "unicode font"])
def test_a_long_statement_repeats_the_column_names_and_numbers_its_pages(font):
    body = render_statement_pdf(_long_report(150), "Klinik", font=font)
    pages = [page.extract_text() for page in PdfReader(io.BytesIO(body)).pages]
    assert len(pages) >= 3
    for number, text in enumerate(pages, start=1):
        assert f"page {number} of {len(pages)}" in text
        assert "Commission statement 2026-11 - Agentur Nord" in text
    for text in pages[:-1]:  # every page of lines starts with the column names
        assert "Referral" in text and "Amount" in text
    listed = " ".join(pages)
    assert all(f"R-2026-{n:05d}" in listed for n in range(1, 151))

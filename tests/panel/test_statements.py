"""The agency panel's statements: the months with their status and totals, one month's
lines, CSV and PDF downloads, and only ever the signed-in user's own agency."""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy import select

from crm.auth import operations as auth
from crm.auth.models import StaffUser
from crm.commission.operations import next_month
from crm.core.audit import AuditEvent
from crm.features import ALL_FEATURES
from tests.commission.support import PLAN_TOTAL, THIS_MONTH, add_contract, refund, treated
from tests.console.support import PASSWORD, sign_in
from tests.helpers import API

pytestmark = pytest.mark.usefixtures("no_stay_guards")
_numbers = itertools.count(1)
COMMISSION = PLAN_TOTAL // 10


def agency_user(session, agency) -> StaffUser:
    user = StaffUser(
        email=f"agent{next(_numbers)}@agency.example",
        name="Agent Smith",
        role="agency",
        agency_id=agency.actor.agency_id,
    )
    auth.set_password(user, PASSWORD)
    session.add(user)
    session.commit()
    return user


@pytest.fixture
def no_stay_guards(features):
    """Referrals walk into treatment by the state machine; every other feature is wired."""
    return features.only(*(name for name in ALL_FEATURES if name != "travel"))


@pytest.fixture
def manager(factory):
    return factory.staff("manager")


@pytest.fixture
def accrued(client, factory, agency, coordinator, manager):
    add_contract(client, manager, agency)
    return treated(client, factory, agency, coordinator)


@pytest.fixture
def signed_in(client, session, agency):
    sign_in(client, agency_user(session, agency).email)
    return client


def _page(client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def test_the_menu_links_the_statements_page(signed_in):
    assert 'href="/agency/statements"' in _page(signed_in, "/agency/")


def test_the_list_shows_this_month_as_a_draft_with_its_net_total(signed_in, accrued):
    text = _page(signed_in, "/agency/statements")
    assert f'href="/agency/statements/{THIS_MONTH}"' in text
    assert ">draft<" in text
    assert "€710.00" in text


def test_an_issued_month_is_listed_as_issued_and_a_later_correction_in_the_next(
    signed_in, client, manager, agency, accrued
):
    client.post(
        f"{API}/agencies/{agency.actor.agency_id}/statements/{THIS_MONTH}/issue",
        headers=manager.headers(),
    )
    refund(client, manager, accrued, PLAN_TOTAL)
    text = _page(signed_in, "/agency/statements")
    assert ">issued<" in text
    assert f'href="/agency/statements/{next_month(THIS_MONTH)}"' in text
    assert "-€710.00" in text  # the refund's reversal, next month


def test_a_month_shows_its_lines_totals_and_downloads(signed_in, accrued):
    text = _page(signed_in, f"/agency/statements/{THIS_MONTH}")
    assert accrued.reference in text
    assert "Draft — not issued." in text
    assert f'href="/agency/statements/{THIS_MONTH}.csv"' in text
    assert f'href="/agency/statements/{THIS_MONTH}.pdf"' in text


def test_the_downloads_are_the_agencys_statement_as_csv_and_pdf(signed_in, accrued):
    csv = signed_in.get(f"/agency/statements/{THIS_MONTH}.csv")
    assert csv.mimetype == "text/csv"
    assert f",{accrued.id},accrued,EUR,{COMMISSION}," in csv.get_data(as_text=True)
    pdf = signed_in.get(f"/agency/statements/{THIS_MONTH}.pdf")
    assert pdf.mimetype == "application/pdf" and pdf.data.startswith(b"%PDF-")


def test_another_agencys_lines_never_appear(
    client, session, factory, coordinator, manager, accrued
):
    other = factory.agency()
    sign_in(client, agency_user(session, other).email)
    text = _page(client, f"/agency/statements/{THIS_MONTH}")
    assert accrued.reference not in text
    assert "No entries in" in text
    assert accrued.reference not in client.get(f"/agency/statements/{THIS_MONTH}.csv").get_data(
        as_text=True
    )


def test_a_month_written_wrongly_is_refused_in_words(signed_in):
    response = signed_in.get("/agency/statements/2026-13")
    assert response.status_code == 422
    assert "YYYY-MM" in response.get_data(as_text=True)


def test_reading_a_statement_is_audited_under_the_agency_user(signed_in, session, accrued):
    _page(signed_in, f"/agency/statements/{THIS_MONTH}")
    labels = session.scalars(
        select(AuditEvent.actor_label).where(AuditEvent.action == "commission.statement_read")
    ).all()
    assert any("Agent Smith" in label for label in labels)


def test_staff_are_sent_to_the_console(client, session):
    from tests.console.support import staff_with_password

    sign_in(client, staff_with_password(session, "coordinator").email)
    response = client.get("/agency/statements")
    assert response.status_code == 302 and response.location.endswith("/console/")

"""The managers' commission page: agencies, contracts in force, the month's statement per
agency with an issue button and CSV/PDF links; never for specialists or coordinators."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from crm.auth import operations as auth
from crm.auth.models import StaffUser
from crm.commission.models import CommissionStatement
from crm.features import ALL_FEATURES
from tests.commission.support import PLAN_TOTAL, THIS_MONTH, add_contract, treated
from tests.console.support import PASSWORD, post, sign_in
from tests.console.test_report_pages import signed_in

PAGE = "/console/commission"


@pytest.fixture(autouse=True)
def no_stay_guards(features):
    return features.only(*(name for name in ALL_FEATURES if name != "travel"))


@pytest.fixture
def accrued(client, factory, agency, coordinator):
    add_contract(client, factory.staff("manager"), agency, basis_points=1250)
    return treated(client, factory, agency, coordinator)


def _text(client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def test_a_manager_sees_each_agency_with_its_contract_and_the_months_draft_total(
    client, session, agency, accrued
):
    signed_in(client, session, "manager")
    text = _text(client, PAGE)
    assert agency.actor.label in text
    assert "12.5% of the accepted plan (every procedure), from 2020-01-01 to open-ended" in text
    assert ">draft<" in text
    assert PLAN_TOTAL * 1250 // 10000 == 88_750
    assert "€887.50" in text  # 12.5% of €7,100.00
    base = f"/console/commission/{agency.actor.agency_id}/{THIS_MONTH}"
    for link in (base, f"{base}.csv", f"{base}.pdf"):
        assert f'href="{link}"' in text


def test_the_issue_button_issues_the_months_statement(client, session, agency, accrued):
    signed_in(client, session, "manager")
    response = post(
        client, f"/console/commission/{agency.actor.agency_id}/{THIS_MONTH}/issue", {}, PAGE
    )
    assert response.status_code == 303
    issued = session.scalar(
        select(CommissionStatement).where(
            CommissionStatement.agency_id == agency.actor.agency_id,
            CommissionStatement.month == THIS_MONTH,
        )
    )
    assert issued is not None and len(issued.lines) == 1
    text = _text(client, PAGE)
    assert "will not change again" in text
    assert ">issued<" in text


def test_issuing_twice_is_refused_in_words(client, session, agency, accrued):
    signed_in(client, session, "manager")
    path = f"/console/commission/{agency.actor.agency_id}/{THIS_MONTH}/issue"
    post(client, path, {}, PAGE)
    post(client, path, {}, PAGE)
    assert "already issued" in _text(client, PAGE)


def test_a_statement_page_lists_the_lines_and_the_downloads_work(client, session, agency, accrued):
    signed_in(client, session, "manager")
    base = f"/console/commission/{agency.actor.agency_id}/{THIS_MONTH}"
    text = _text(client, base)
    assert accrued.reference in text
    assert "Draft — not issued." in text
    assert client.get(f"{base}.csv").mimetype == "text/csv"
    assert client.get(f"{base}.pdf").data.startswith(b"%PDF-")


def test_another_month_is_chosen_by_the_form(client, session, agency, accrued):
    signed_in(client, session, "manager")
    text = _text(client, f"{PAGE}?month=2020-01")
    assert "Commission: 2020-01" in text
    assert "€887.50" not in text


def test_a_month_written_wrongly_is_refused(client, session):
    signed_in(client, session, "manager")
    assert client.get(f"{PAGE}?month=2026-13").status_code == 422


@pytest.mark.parametrize("role", ["coordinator", "specialist"])
def test_coordinators_and_specialists_never_see_commission(client, session, agency, role):
    signed_in(client, session, role)
    assert client.get(PAGE).status_code == 403
    assert client.get(f"/console/commission/{agency.actor.agency_id}/{THIS_MONTH}").status_code == (
        403
    )


def test_an_agency_user_is_sent_to_the_agency_panel(client, session, agency):
    user = StaffUser(
        email="agent.console@agency.example",
        name="Agent",
        role="agency",
        agency_id=agency.actor.agency_id,
    )
    auth.set_password(user, PASSWORD)
    session.add(user)
    session.commit()
    sign_in(client, user.email)
    response = client.get(PAGE)
    assert response.status_code == 302 and response.location.endswith("/agency/")


def test_the_reports_index_links_commission_for_managers_only(client, session):
    signed_in(client, session, "manager")
    assert f'href="{PAGE}"' in _text(client, "/console/reports")
    client.post("/console/sign-out")
    other = client.application.test_client()
    signed_in(other, session, "coordinator")
    assert f'href="{PAGE}"' not in _text(other, "/console/reports")

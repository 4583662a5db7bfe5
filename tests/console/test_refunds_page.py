"""A manager records a refund on the console: the referral's accepted plan, what is left to
refund, the refunds recorded with the commission each reversed, and a form whose refusals
show beside their fields; the API's operation does the work. Never for coordinators."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from crm.commission.models import CommissionEntry, Refund
from crm.features import ALL_FEATURES
from tests.commission.support import PLAN_TOTAL, add_contract, treated
from tests.console.support import post
from tests.console.test_report_pages import signed_in


@pytest.fixture(autouse=True)
def no_stay_guards(features):
    return features.only(*(name for name in ALL_FEATURES if name != "travel"))


@pytest.fixture
def accrued(client, factory, agency, coordinator):
    add_contract(client, factory.staff("manager"), agency, basis_points=1000)
    return treated(client, factory, agency, coordinator)


def _page(referral) -> str:
    return f"/console/referrals/{referral.id}/refunds"


def _refunds(session, referral) -> list[Refund]:
    session.expire_all()
    return list(session.scalars(select(Refund).where(Refund.referral_id == referral.id)))


def test_a_manager_records_a_partial_refund_and_the_commission_is_reversed(
    client, session, accrued
):
    signed_in(client, session, "manager")
    page = client.get(_page(accrued)).get_data(as_text=True)
    assert "€7,100.00" in page and "No refund recorded." in page
    response = post(
        client,
        _page(accrued),
        {"amount": "710", "reason": "second night not needed"},
        _page(accrued),
    )
    assert response.status_code == 303
    [refund] = _refunds(session, accrued)
    assert (refund.amount_minor, refund.currency) == (71_000, "EUR")
    reversed_ = session.scalars(
        select(CommissionEntry).where(CommissionEntry.cause.startswith(f"refund:{refund.id}:"))
    ).all()
    assert [entry.amount_minor for entry in reversed_] == [-(PLAN_TOTAL // 10) // 10]
    page = client.get(_page(accrued)).get_data(as_text=True)
    assert "Refund of €710.00 recorded; commission reversed: €71.00." in page
    assert "second night not needed" in page
    assert "Left to refund: <strong>€6,390.00</strong>" in page


@pytest.mark.parametrize(
    ("amount", "reason", "field", "said"),
    [
        ("7100.01", "too much", "amount", "at most 710000"),
        ("12,50", "a comma", "amount", "a point for decimals"),
        ("10.005", "three decimals", "amount", "more decimals than EUR"),
        ("10", "", "reason", "Length must be between"),
    ],
)
def test_a_refused_refund_is_said_beside_its_field_and_nothing_is_stored(
    client, session, accrued, amount, reason, field, said
):
    signed_in(client, session, "manager")
    response = post(client, _page(accrued), {"amount": amount, "reason": reason}, _page(accrued))
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert f'<p class="field-error" id="{field}-error">' in page
    assert said.lower() in page.lower()
    assert f'value="{amount}"' in page or field == "reason"  # what was typed is kept
    assert _refunds(session, accrued) == []


def test_a_referral_without_an_accepted_plan_has_nothing_to_refund(
    client, session, factory, agency
):
    signed_in(client, session, "manager")
    referral = factory.referral(agency)
    page = client.get(_page(referral)).get_data(as_text=True)
    assert "nothing to refund" in page and "Record the refund" not in page
    response = post(client, _page(referral), {"amount": "10", "reason": "x"}, _page(referral))
    assert response.status_code == 409
    assert _refunds(session, referral) == []


@pytest.mark.parametrize("role", ["coordinator", "specialist"])
def test_coordinators_and_specialists_get_the_403_page(client, session, accrued, role):
    signed_in(client, session, role)
    assert client.get(_page(accrued)).status_code == 403


def test_the_referral_page_links_refunds_for_managers_only(app, client, session, accrued):
    signed_in(client, session, "manager")
    page = client.get(f"/console/referrals/{accrued.id}").get_data(as_text=True)
    assert f'href="{_page(accrued)}"' in page
    other = app.test_client()
    signed_in(other, session, "coordinator")
    page = other.get(f"/console/referrals/{accrued.id}").get_data(as_text=True)
    assert _page(accrued) not in page

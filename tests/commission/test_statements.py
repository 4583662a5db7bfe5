import pytest

from crm.commission.models import CommissionEntry
from crm.commission.operations import next_month
from tests.commission.support import PLAN_TOTAL, THIS_MONTH, add_contract, treated
from tests.helpers import assert_problem

pytestmark = pytest.mark.usefixtures("no_stay_guards")


def _url(agency, month=THIS_MONTH):
    return f"/api/v1/agencies/{agency.actor.agency_id}/statements/{month}"


@pytest.fixture
def accrued(client, factory, agency, coordinator, manager):
    add_contract(client, manager, agency)
    return treated(client, factory, agency, coordinator)


def test_an_agency_reads_its_own_statement(client, agency, accrued):
    body = client.get(f"/api/v1/statements/{THIS_MONTH}", headers=agency.headers()).json
    assert body["status"] == "open"
    assert [(line["referral_id"], line["kind"]) for line in body["lines"]] == [
        (accrued.id, "accrued")
    ]


def test_another_agencys_statement_is_404(client, factory, agency, accrued):
    other = factory.agency()
    assert_problem(client.get(_url(agency), headers=other.headers()), 404, "not-found")


def test_a_manager_reads_any_agencys_statement(client, manager, agency, accrued):
    assert client.get(_url(agency), headers=manager.headers()).json["agency_id"] == (
        agency.actor.agency_id
    )


def test_coordinators_and_specialists_never_see_commission(
    client, coordinator, specialist, agency, accrued
):
    for caller in (coordinator, specialist):
        assert_problem(client.get(_url(agency), headers=caller.headers()), 403, "forbidden")


def test_sums_are_per_currency_and_never_converted(
    client, factory, agency, coordinator, manager, accrued
):
    treated(client, factory, agency, coordinator, currency="USD")
    totals = client.get(_url(agency), headers=manager.headers()).json["totals"]
    assert [(t["currency"], t["accrued_minor"], t["net_minor"]) for t in totals] == [
        ("EUR", PLAN_TOTAL // 10, PLAN_TOTAL // 10),
        ("USD", PLAN_TOTAL // 10, PLAN_TOTAL // 10),
    ]


def test_an_issued_statement_is_frozen_and_later_entries_land_next_month(
    session, client, factory, agency, coordinator, manager, accrued
):
    issued = client.post(_url(agency) + "/issue", headers=manager.headers())
    assert issued.status_code == 201 and issued.json["status"] == "issued"
    later = treated(client, factory, agency, coordinator)
    again = client.get(_url(agency), headers=manager.headers()).json
    assert again["lines"] == issued.json["lines"]
    entry = session.query(CommissionEntry).filter_by(referral_id=later.id).one()
    assert entry.period == next_month(THIS_MONTH)


def test_a_statement_is_issued_only_once(client, manager, agency, accrued):
    client.post(_url(agency) + "/issue", headers=manager.headers())
    response = client.post(_url(agency) + "/issue", headers=manager.headers())
    assert_problem(response, 409, "conflict")


def test_the_statement_as_csv_has_the_lines_and_a_total_per_currency(
    client, manager, agency, accrued
):
    response = client.get(_url(agency) + "?format=csv", headers=manager.headers())
    assert response.mimetype == "text/csv"
    rows = [line.split(",") for line in response.get_data(as_text=True).splitlines()]
    assert rows[0][:4] == ["row", "entry_id", "referral_id", "kind"]
    assert rows[1][2:6] == [str(accrued.id), "accrued", "EUR", str(PLAN_TOTAL // 10)]
    assert ["total_net", "", "", "", "EUR", str(PLAN_TOTAL // 10), "", "", ""] in rows


def test_a_month_written_wrongly_is_refused(client, manager, agency):
    assert_problem(
        client.get(_url(agency, "2026-13"), headers=manager.headers()), 422, "validation-failed"
    )

from tests.commission.support import add_contract
from tests.helpers import assert_problem, field_errors


def test_a_manager_adds_a_percentage_contract(client, manager, agency):
    response = add_contract(client, manager, agency)
    assert response.status_code == 201
    assert response.json["basis_points"] == 1000
    listed = client.get(
        f"/api/v1/agencies/{agency.actor.agency_id}/contracts", headers=manager.headers()
    )
    assert [c["id"] for c in listed.json] == [response.json["id"]]


def test_an_overlapping_contract_for_the_same_procedure_is_refused_in_words(
    client, manager, agency
):
    add_contract(client, manager, agency, effective_to="2025-12-31")
    response = add_contract(client, manager, agency, effective_from="2025-06-01")
    body = assert_problem(response, 422, "validation-failed")
    assert "overlaps contract" in field_errors(body)["effective_from"]


def test_a_contract_after_the_last_one_ended_is_accepted(client, manager, agency):
    add_contract(client, manager, agency, effective_to="2025-12-31")
    assert add_contract(client, manager, agency, effective_from="2026-01-01").status_code == 201


def test_a_procedure_contract_may_run_beside_the_general_one(client, manager, agency):
    add_contract(client, manager, agency)
    fixed = {"kind": "fixed", "amount_minor": 50_000, "currency": "EUR"}
    response = client.post(
        f"/api/v1/agencies/{agency.actor.agency_id}/contracts",
        json={**fixed, "procedure_code": "microdiscectomy", "effective_from": "2020-01-01"},
        headers=manager.headers(),
    )
    assert response.status_code == 201


def test_a_fixed_contract_needs_a_real_currency(client, manager, agency):
    response = client.post(
        f"/api/v1/agencies/{agency.actor.agency_id}/contracts",
        json={
            "kind": "fixed",
            "amount_minor": 100,
            "currency": "XXZ",
            "effective_from": "2026-01-01",
        },
        headers=manager.headers(),
    )
    assert "currency" in field_errors(assert_problem(response, 422, "validation-failed"))


def test_coordinators_and_specialists_never_see_contracts(client, coordinator, specialist, agency):
    for caller in (coordinator, specialist):
        response = client.get(
            f"/api/v1/agencies/{agency.actor.agency_id}/contracts", headers=caller.headers()
        )
        assert response.status_code == 403

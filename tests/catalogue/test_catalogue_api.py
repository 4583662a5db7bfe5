"""The procedure catalogue as agencies read it."""

from __future__ import annotations

from tests.helpers import API, assert_problem


def test_an_agency_reads_the_procedure_catalogue(client, factory):
    agency = factory.agency()
    response = client.get(f"{API}/procedures", headers=agency.headers())
    assert response.status_code == 200
    spine = next(p for p in response.json if p["code"] == "microdiscectomy")
    assert spine["requires_mri"] is True
    assert spine["anaesthesia"] == "general"
    assert (spine["duration_minutes_min"], spine["duration_minutes_max"]) == (45, 60)
    assert (spine["hospital_nights_min"], spine["hospital_nights_max"]) == (1, 2)
    assert (spine["recovery_weeks_min"], spine["recovery_weeks_max"]) == (4, 6)
    one = client.get(f"{API}/procedures/microdiscectomy", headers=agency.headers())
    assert one.json["follow_up_schedule"][0] == {"label": "day_1", "offset_days": 1}


def test_an_unknown_procedure_is_a_404_problem(client, factory):
    agency = factory.agency()
    assert_problem(
        client.get(f"{API}/procedures/nothing", headers=agency.headers()), 404, "not-found"
    )

"""The reports through the API: figures, filters, roles and the CSV export."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

from crm.referrals.operations import move_to_stage
from crm.reports import rollups
from tests.reports.support import API, accepted_case


def _get(client, caller, path, **query):
    return client.get(f"{API}/{path}", query_string=query, headers=caller.headers())


def test_the_funnel_counts_referrals_reaching_each_stage_and_the_conversion(
    client, factory, agency, coordinator
):
    for _ in range(3):
        factory.referral(agency)
    moved = factory.referral(agency)
    move_to_stage(moved, "awaiting_mri", coordinator.actor)
    factory.session.commit()
    body = _get(client, coordinator, "funnel", agency_id=agency.actor.agency_id).json
    stages = {s["stage"]: s for s in body["stages"]}
    assert stages["enquiry"]["reached"] == 4
    assert stages["enquiry"]["conversion"] is None
    assert stages["awaiting_mri"] == {"stage": "awaiting_mri", "reached": 1, "conversion": 0.25}


def test_the_funnel_lists_the_reasons_referrals_were_lost(client, factory, agency, coordinator):
    referral = factory.referral(agency)
    move_to_stage(referral, "lost", coordinator.actor, reason="price")
    factory.session.commit()
    body = _get(client, coordinator, "funnel", agency_id=agency.actor.agency_id).json
    assert {"reason": "price", "referrals": 1} in body["lost"]


def test_a_date_range_outside_the_activity_counts_nothing(client, factory, agency, coordinator):
    factory.referral(agency)
    body = _get(client, coordinator, "funnel", **{"from": "2001-01-01", "to": "2001-12-31"}).json
    assert all(stage["reached"] == 0 for stage in body["stages"])


def test_from_after_to_is_refused_naming_the_field(client, coordinator):
    response = _get(client, coordinator, "funnel", **{"from": "2026-02-01", "to": "2026-01-01"})
    assert response.status_code == 422
    assert "from" in response.get_data(as_text=True)


def test_time_in_stage_gives_median_and_90th_percentile_per_stage_and_month(
    client, factory, agency, coordinator
):
    referral = factory.referral(agency)
    left = datetime(2026, 3, 10, tzinfo=UTC)
    for hours in (1, 2, 3, 4, 5, 6, 7, 8, 9, 100):
        rollups.count_visit(referral, "enquiry", left - timedelta(hours=hours), left)
    factory.session.commit()
    body = _get(client, coordinator, "time-in-stage", agency_id=agency.actor.agency_id).json
    row = next(r for r in body["rows"] if r["month"] == "2026-03")
    assert row["stage"] == "enquiry" and row["visits"] == 10
    assert abs(row["median_hours"] - 5) / 5 < 0.1
    assert abs(row["p90_hours"] - 9) / 9 < 0.1


def test_agency_performance_sums_accepted_plans_per_currency_never_converted(
    client, factory, agency, coordinator
):
    accepted_case(client, factory, agency, coordinator)
    accepted_case(client, factory, agency, coordinator, currency="USD")
    manager = factory.staff("manager")
    body = _get(client, manager, "agencies", agency_id=agency.actor.agency_id).json
    (row,) = body["agencies"]
    assert row["referrals"] == 2 and row["plan_accepted"] == 2
    assert row["conversion_plan_accepted"] == 1.0
    assert row["accepted_value"] == [
        {"currency": "EUR", "amount_minor": 710000},
        {"currency": "USD", "amount_minor": 710000},
    ]


def test_a_specialist_never_sees_the_agencies_revenue(client, specialist):
    assert _get(client, specialist, "agencies").status_code == 403


def test_an_agency_sees_no_report(client, agency):
    assert _get(client, agency, "funnel").status_code == 403


def test_the_messaging_report_counts_the_outbox_by_channel(client, factory, agency, coordinator):
    factory.referral(agency)  # the enquiry's immediate messages are queued
    body = _get(client, coordinator, "messaging", agency_id=agency.actor.agency_id).json
    assert {row["channel"] for row in body["channels"]} == {"sms", "email", "whatsapp"}
    assert sum(row["queued"] + row["suppressed"] for row in body["channels"]) >= 1


def test_every_report_downloads_as_csv_with_one_header_line(client, factory, agency):
    factory.referral(agency)
    manager = factory.staff("manager")
    for name in ("funnel", "time-in-stage", "agencies", "messaging"):
        response = _get(client, manager, name, format="csv")
        assert response.status_code == 200, name
        assert response.mimetype == "text/csv"
        rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
        assert rows and rows[0][0] in {"kind", "month", "agency_id", "channel"}


def test_the_openapi_document_declares_the_csv_answer(client):
    spec = client.get("/api/v1/openapi.json").json
    content = spec["paths"]["/api/v1/reports/funnel"]["get"]["responses"]["200"]["content"]
    assert {"application/json", "text/csv"} <= set(content)


def test_a_withdrawn_sms_consent_is_counted_as_an_opt_out(client, factory, agency, coordinator):
    referral = factory.referral(agency)
    patched = client.patch(
        f"/api/v1/referrals/{referral.id}/patient",
        json={"consents": {"sms": False}},
        headers=agency.headers(),
    )
    assert patched.status_code == 200
    body = _get(client, coordinator, "messaging", agency_id=agency.actor.agency_id).json
    sms = next(row for row in body["channels"] if row["channel"] == "sms")
    assert sms["opt_outs"] == 1

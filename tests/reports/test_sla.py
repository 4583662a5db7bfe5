"""The SLA report: counts per service level, the breaches listed (open ones included),
filters, roles, CSV and the audit."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from sqlalchemy import select

from crm.core.audit import AuditEvent
from crm.core.db import utcnow
from crm.referrals.operations import move_to_stage
from crm.reports.rollups import rebuild
from tests.reports.support import API, rollup_rows


def _get(client, caller, **query):
    return client.get(f"{API}/sla", query_string=query, headers=caller.headers())


def aged(factory, agency, hours: float, **overrides):
    """A referral submitted `hours` ago (its enquiry visit began then)."""
    referral = factory.referral(agency, **overrides)
    began = utcnow() - timedelta(hours=hours)
    referral.history[-1].occurred_at = began
    referral.stage_entered_at = began
    factory.session.commit()
    return referral


def answered_after(factory, agency, coordinator, hours: float, **overrides):
    """An enquiry taken out of `enquiry` `hours` after it came in (now)."""
    referral = aged(factory, agency, hours, **overrides)
    move_to_stage(referral, "awaiting_mri", coordinator.actor)
    factory.session.commit()
    return referral


def _level(body, name="first_response"):
    return next(level for level in body["levels"] if level["service_level"] == name)


def test_each_service_level_counts_visits_finished_in_time_and_late(
    client, factory, agency, coordinator
):
    answered_after(factory, agency, coordinator, 2)
    answered_after(factory, agency, coordinator, 3)
    answered_after(factory, agency, coordinator, 30)  # the first response SLA is 24 h
    body = _get(client, coordinator, agency_id=agency.actor.agency_id).json
    level = _level(body)
    assert level["stage"] == "enquiry" and level["allowed_hours"] == 24
    assert (level["finished"], level["within"], level["breached"]) == (3, 2, 1)
    assert level["on_time_share"] == round(2 / 3, 4)
    assert abs(level["median_hours"] - 3) / 3 < 0.1
    assert {lv["service_level"] for lv in body["levels"]} == {
        "first_response",
        "mri_review",
        "plan_answer",
    }


def test_a_late_answer_is_listed_with_its_reference_dates_and_hours_over(
    client, factory, agency, coordinator
):
    answered_after(factory, agency, coordinator, 2)
    late = answered_after(factory, agency, coordinator, 30)
    body = _get(client, coordinator, agency_id=agency.actor.agency_id).json
    (breach,) = body["breaches"]
    assert breach["reference"] == late.reference and breach["procedure"] == "microdiscectomy"
    assert breach["service_level"] == "first_response" and breach["left_at"] is not None
    assert abs(breach["hours_over"] - 6) < 0.2
    assert body["breaches_total"] == 1


def test_an_enquiry_still_waiting_past_due_is_listed_as_open_and_counted(
    client, factory, agency, coordinator
):
    waiting = aged(factory, agency, 40)
    aged(factory, agency, 1)  # still within its 24 hours
    body = _get(client, coordinator, agency_id=agency.actor.agency_id).json
    assert _level(body)["open_past_due"] == 1
    (breach,) = body["breaches"]
    assert breach["reference"] == waiting.reference and breach["left_at"] is None
    assert abs(breach["hours_over"] - 16) < 0.2


def test_breaches_are_listed_open_first_then_newest_finished_first(
    client, factory, agency, coordinator
):
    older = answered_after(factory, agency, coordinator, 50)
    newer = answered_after(factory, agency, coordinator, 30)
    waiting = aged(factory, agency, 26)
    body = _get(client, coordinator, agency_id=agency.actor.agency_id).json
    listed = [b["reference"] for b in body["breaches"]]
    assert listed == [waiting.reference, newer.reference, older.reference]
    assert body["breaches_total"] == 3


def test_the_agency_filter_leaves_other_agencies_breaches_out(client, factory, agency, coordinator):
    other = factory.agency()
    answered_after(factory, other, coordinator, 30)
    aged(factory, other, 30)
    body = _get(client, coordinator, agency_id=agency.actor.agency_id).json
    assert body["breaches"] == [] and body["breaches_total"] == 0
    assert _level(body)["finished"] == 0


def test_the_procedure_filter_counts_only_that_procedure(client, factory, agency, coordinator):
    answered_after(factory, agency, coordinator, 30)
    body = _get(client, coordinator, procedure="no-such-procedure").json
    assert _level(body)["finished"] == 0 and body["breaches"] == []


def test_a_date_range_before_the_visits_counts_and_lists_no_finished_breach(
    client, factory, agency, coordinator
):
    answered_after(factory, agency, coordinator, 30)
    body = _get(client, coordinator, **{"from": "2001-01-01", "to": "2001-12-31"}).json
    assert _level(body)["finished"] == 0
    assert all(b["left_at"] is None for b in body["breaches"])


def test_the_sla_report_downloads_as_csv_with_levels_and_breaches(
    client, factory, agency, coordinator
):
    late = answered_after(factory, agency, coordinator, 30)
    response = _get(client, coordinator, agency_id=agency.actor.agency_id, format="csv")
    assert response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    levels = {r["service_level"]: r for r in rows if r["kind"] == "level"}
    assert levels["first_response"]["breached"] == "1"
    (breach,) = [r for r in rows if r["kind"] == "breach"]
    assert breach["reference"] == late.reference and breach["left_at"]


def test_a_specialist_reads_the_sla_report_and_an_agency_does_not(client, specialist, agency):
    assert _get(client, specialist).status_code == 200
    assert _get(client, agency).status_code == 403


def test_reading_the_sla_report_is_audited_with_its_filters(client, session, coordinator):
    assert _get(client, coordinator, procedure="microdiscectomy").status_code == 200
    event = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "report.read").order_by(AuditEvent.id.desc())
    ).first()
    assert event.detail["report"] == "sla" and event.detail["procedure"] == "microdiscectomy"


def test_the_openapi_document_declares_the_sla_report_in_json_and_csv(client):
    spec = client.get("/api/v1/openapi.json").json
    content = spec["paths"]["/api/v1/reports/sla"]["get"]["responses"]["200"]["content"]
    assert {"application/json", "text/csv"} <= set(content)


def test_the_sla_rollup_kept_by_events_equals_a_rebuild(app, session, factory, agency, coordinator):
    answered_after(factory, agency, coordinator, 2)
    answered_after(factory, agency, coordinator, 30)
    kept = rollup_rows(session)["report_sla_monthly"]
    assert sum(row[-1] for row in kept) == 1  # one breach
    from crm.referrals.sla import service_levels

    rebuild(service_levels(app.config["CRM"]))
    assert rollup_rows(session)["report_sla_monthly"] == kept


def test_the_breach_list_pages_through_the_moves_until_it_has_them_all(
    client, factory, agency, coordinator, monkeypatch
):
    from crm.reports import sla

    monkeypatch.setattr(sla, "BATCH", 2)  # pages of two moves out of the stage
    late = []
    for hours in (30, 2, 40, 3, 50, 60):
        referral = answered_after(factory, agency, coordinator, hours)
        if hours > 24:
            late.append(referral.reference)
    body = _get(client, coordinator, agency_id=agency.actor.agency_id).json
    assert [b["reference"] for b in body["breaches"]] == late[::-1]

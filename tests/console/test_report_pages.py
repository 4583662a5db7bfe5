"""The reports in the console: the index, each page's chart and table, the filters, the
CSV download under the session, role refusals and the audit."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pyotp
import pytest
from sqlalchemy import select

from crm.core.audit import AuditEvent
from crm.core.db import utcnow
from crm.referrals.operations import move_to_stage
from tests.console.support import post, sign_in, staff_with_password
from tests.reports.support import accepted_case

REPORTS = ("funnel", "time-in-stage", "agencies", "messaging", "sla")
SHARED = ("funnel", "time-in-stage", "messaging", "sla")


def signed_in(client, session, role="coordinator"):
    user = staff_with_password(session, role)
    response = sign_in(client, user.email)
    if role in {"manager", "admin"}:  # they enrol a second factor at their first sign-in
        page = client.get("/console/enrol").get_data(as_text=True)
        secret = re.search(r'<code class="secret">([A-Z2-7]+)</code>', page).group(1)
        totp = pyotp.TOTP(secret)
        code = totp.generate_otp(totp.timecode(utcnow()))
        response = post(client, "/console/enrol", {"code": code}, form_page="/console/enrol")
    assert response.status_code in {302, 303}
    return user


def _reads(session, report):
    return session.scalars(
        select(AuditEvent).where(AuditEvent.action == "report.read").order_by(AuditEvent.id)
    ).all()


def test_the_index_lists_every_report_for_a_manager(client, session):
    signed_in(client, session, "manager")
    text = client.get("/console/reports").get_data(as_text=True)
    for name in REPORTS:
        assert f'href="/console/reports/{name}"' in text


def test_the_index_leaves_the_agencies_report_out_for_a_coordinator(client, session):
    signed_in(client, session)
    text = client.get("/console/reports").get_data(as_text=True)
    assert 'href="/console/reports/funnel"' in text
    assert "/console/reports/agencies" not in text


@pytest.mark.parametrize("name", REPORTS)
def test_each_report_page_draws_its_chart_and_its_table(
    client, session, factory, coordinator, name
):
    move_to_stage(factory.referral(factory.agency()), "awaiting_mri", coordinator.actor)
    factory.session.commit()
    signed_in(client, session, "manager")
    page = client.get(f"/console/reports/{name}")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert '<svg xmlns="http://www.w3.org/2000/svg" role="img"' in text
    assert "<table" in text and "Download CSV" in text
    assert '<label for="f-agency">Agency</label>' in text


def test_the_funnel_page_shows_the_figures_of_the_report(client, session, factory, coordinator):
    agency = factory.agency()
    for _ in range(3):
        factory.referral(agency)
    move_to_stage(factory.referral(agency), "awaiting_mri", coordinator.actor)
    factory.session.commit()
    signed_in(client, session)
    text = client.get("/console/reports/funnel").get_data(as_text=True)
    assert re.search(r'<th scope="row">Enquiry</th><td class="num">4</td>', text)
    assert re.search(r'<th scope="row">Awaiting MRI</th><td class="num">1</td>', text)
    assert "25.0%" in text


def test_the_agency_filter_is_applied_and_kept_selected(client, session, factory, coordinator):
    mine, other = factory.agency("Mine Travel"), factory.agency("Other Travel")
    factory.referral(mine)
    for _ in range(2):
        factory.referral(other)
    signed_in(client, session)
    agency_id = mine.actor.agency_id
    text = client.get(f"/console/reports/funnel?agency_id={agency_id}").get_data(as_text=True)
    assert re.search(r'<th scope="row">Enquiry</th><td class="num">1</td>', text)
    assert f'<option value="{agency_id}" selected>Mine Travel</option>' in text
    assert f'href="/console/reports/funnel.csv?agency_id={agency_id}"' in text


def test_dates_in_the_wrong_order_are_refused_in_words(client, session):
    signed_in(client, session)
    page = client.get("/console/reports/funnel?from=2026-02-01&to=2026-01-01")
    assert page.status_code == 422
    assert "From: must not be after" in page.get_data(as_text=True)


def test_empty_filters_count_everything(client, session, factory):
    factory.referral(factory.agency())
    signed_in(client, session)
    page = client.get("/console/reports/funnel?from=&to=&agency_id=&procedure=")
    assert page.status_code == 200


def test_the_csv_download_carries_the_same_figures_under_the_session(
    client, session, factory, coordinator
):
    agency = factory.agency()
    for _ in range(2):
        factory.referral(agency)
    signed_in(client, session)
    response = client.get(f"/console/reports/funnel.csv?agency_id={agency.actor.agency_id}")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert 'filename="funnel.csv"' in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    enquiry = next(r for r in rows if r["kind"] == "stage" and r["name"] == "enquiry")
    assert enquiry["referrals"] == "2"


@pytest.mark.parametrize("name", SHARED)
def test_every_shared_report_downloads_as_csv_for_a_specialist(client, session, name):
    signed_in(client, session, "specialist")
    response = client.get(f"/console/reports/{name}.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"


def test_the_agencies_page_shows_accepted_value_to_a_manager(client, session, factory):
    agency = factory.agency("Value Travel")
    accepted_case(client, factory, agency, factory.staff())
    signed_in(client, session, "manager")
    text = client.get("/console/reports/agencies").get_data(as_text=True)
    assert "Value Travel" in text and "€7,100.00" in text


@pytest.mark.parametrize("role", ["coordinator", "specialist"])
def test_the_agencies_report_is_a_403_page_below_manager(client, session, role):
    signed_in(client, session, role)
    page = client.get("/console/reports/agencies")
    assert page.status_code == 403 and "Not allowed" in page.get_data(as_text=True)
    assert client.get("/console/reports/agencies.csv").status_code == 403


def test_a_refused_report_is_audited(client, session):
    signed_in(client, session, "specialist")
    client.get("/console/reports/agencies")
    refusals = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "console.forbidden")
    ).all()
    assert [r.detail["path"] for r in refusals] == ["/console/reports/agencies"]


def test_reading_a_report_page_is_audited_with_its_filters(client, session):
    signed_in(client, session)
    client.get("/console/reports/messaging?procedure=microdiscectomy")
    (event,) = _reads(session, "messaging")
    assert event.detail["report"] == "messaging"
    assert event.detail["procedure"] == "microdiscectomy"


def test_downloading_a_csv_is_audited_as_a_csv_read(client, session):
    signed_in(client, session)
    client.get("/console/reports/sla.csv")
    (event,) = _reads(session, "sla")
    assert event.detail == {"report": "sla", "format": "csv"}


def test_the_sla_page_lists_a_visit_still_waiting_past_due(client, session, factory):
    referral = factory.referral(factory.agency("Late Travel"))
    referral.stage_entered_at = referral.history[-1].occurred_at = utcnow() - timedelta(days=3)
    factory.session.commit()
    signed_in(client, session)
    text = client.get("/console/reports/sla").get_data(as_text=True)
    assert f'href="/console/referrals/{referral.id}">{referral.reference}</a>' in text
    assert "still waiting" in text and "Late Travel" in text


def test_signed_out_a_report_page_sends_to_sign_in(client):
    response = client.get("/console/reports/funnel")
    assert response.status_code == 302 and "/console/sign-in" in response.headers["Location"]

"""The admin area: the index by role, agencies and their API keys, the catalogue."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from crm.agencies.models import Agency
from crm.auth.models import AgencyApiKey
from tests.console.admin_support import audited, signed_in, submit, text

ADMIN = "/console/admin"
AGENCIES = "/console/admin/agencies"
CATALOGUE = "/console/admin/catalogue"
_SECRET = re.compile(r'<code class="secret" id="new-key">(crm_ak_[^<]+)</code>')


def _agency(session, name: str = "Berlin MedTravel") -> Agency:
    agency = Agency(name=name, country="DE", commission_basis_points=1000)
    session.add(agency)
    session.commit()
    return agency


def _issue(client, agency: Agency, label: str = "production") -> str:
    response = submit(client, f"{AGENCIES}/{agency.id}/keys", {"label": label}, AGENCIES)
    assert response.status_code == 200
    return _SECRET.search(text(response)).group(1)


def _works(app, secret: str) -> bool:
    answer = app.test_client().get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
    return answer.status_code == 200


# --- the index ------------------------------------------------------------------------


def test_the_admin_index_lists_every_admin_page_for_an_admin(client, session):
    signed_in(client, session, "admin")
    page = text(client.get(ADMIN))
    titles = ("Agencies and API keys", "Staff and roles", "Nudge rules", "Procedure catalogue")
    for title in (*titles, "The outbox"):
        assert title in page


def test_the_admin_index_shows_a_coordinator_the_catalogue_and_the_outbox(client, session):
    signed_in(client, session, "coordinator")
    page = text(client.get(ADMIN))
    assert "Procedure catalogue" in page and "The outbox" in page
    assert "Agencies and API keys" not in page
    assert "Staff and roles" not in page


def test_the_admin_index_shows_a_specialist_no_outbox(client, session):
    signed_in(client, session, "specialist")
    assert "The outbox" not in text(client.get(ADMIN))


def test_the_menu_links_the_admin_area(client, session):
    signed_in(client, session, "coordinator")
    assert 'href="/console/admin"' in text(client.get("/console/"))


# --- agencies and keys ----------------------------------------------------------------


def test_the_agencies_page_lists_agencies_with_country_active_referrals_and_keys(
    client, session, factory
):
    caller = factory.agency("Anatolia Partners")
    factory.referral(caller)
    signed_in(client, session, "manager")
    page = text(client.get(AGENCIES))
    assert "Anatolia Partners" in page
    assert re.search(r"Active referrals</dt><dd>1</dd>", page)
    key = session.scalar(select(AgencyApiKey).where(AgencyApiKey.agency_id == caller.actor.id))
    assert key.prefix in page
    assert caller.secret not in page


def test_a_manager_reads_the_agencies_but_gets_no_forms_to_change_them(client, session):
    _agency(session)
    signed_in(client, session, "manager")
    page = text(client.get(AGENCIES))
    assert "Berlin MedTravel" in page
    assert "Create agency" not in page
    assert "Issue a key" not in page


def test_a_coordinator_may_not_open_the_agencies(client, session):
    signed_in(client, session, "coordinator")
    assert client.get(AGENCIES).status_code == 403


@pytest.mark.parametrize("role", ["coordinator", "manager"])
def test_only_an_admin_may_create_an_agency(client, session, role):
    signed_in(client, session, role)
    response = submit(client, AGENCIES, {"name": "Sneaky Ltd", "country": "GB"}, "/console/")
    assert response.status_code == 403
    assert session.scalar(select(Agency).where(Agency.name == "Sneaky Ltd")) is None


def test_a_coordinator_may_not_issue_or_revoke_a_key(client, session, factory):
    caller = factory.agency()
    key = session.scalar(select(AgencyApiKey).where(AgencyApiKey.agency_id == caller.actor.id))
    signed_in(client, session, "coordinator")
    assert submit(client, f"{AGENCIES}/{caller.actor.id}/keys", {}, "/console/").status_code == 403
    revoke = submit(client, f"{AGENCIES}/keys/{key.prefix}/revoke", {}, "/console/")
    assert revoke.status_code == 403


def test_an_admin_creates_an_agency_and_it_is_audited(client, session):
    admin = signed_in(client, session, "admin")
    form = {"name": "Gulf Health", "country": "ae", "commission_percent": "12.5"}
    response = submit(client, AGENCIES, form, AGENCIES)
    assert response.status_code == 303
    agency = session.scalar(select(Agency).where(Agency.name == "Gulf Health"))
    assert (agency.country, agency.commission_basis_points) == ("AE", 1250)
    assert "Gulf Health created" in text(client.get(AGENCIES))
    assert audited(session, "agency.create", admin)[0].detail["agency_id"] == agency.id


def test_an_agency_with_a_wrong_country_is_refused_in_words(client, session):
    signed_in(client, session, "admin")
    submit(client, AGENCIES, {"name": "Nowhere Travel", "country": "XX"}, AGENCIES)
    page = text(client.get(AGENCIES))
    assert "Not accepted: country:" in page
    assert session.scalar(select(Agency).where(Agency.name == "Nowhere Travel")) is None


def test_a_second_agency_of_the_same_name_is_refused_in_words(client, session):
    _agency(session)
    signed_in(client, session, "admin")
    submit(client, AGENCIES, {"name": "berlin medtravel", "country": "DE"}, AGENCIES)
    assert "exists already" in text(client.get(AGENCIES))


def test_an_issued_key_is_shown_once_and_works(client, app, session):
    agency = _agency(session)
    signed_in(client, session, "admin")
    secret = _issue(client, agency)
    assert _works(app, secret)
    page = text(client.get(AGENCIES))
    assert secret not in page
    assert "_".join(secret.split("_")[:3]) in page  # its prefix stays listed


def test_issuing_a_key_is_audited_as_the_admin(client, session):
    agency = _agency(session)
    admin = signed_in(client, session, "admin")
    secret = _issue(client, agency)
    [event] = audited(session, "agency_key.issue", admin)
    assert event.detail == {"agency_id": agency.id, "key_prefix": "_".join(secret.split("_")[:3])}


def test_a_revoked_key_stops_working_and_is_shown_revoked(client, app, session):
    agency = _agency(session)
    admin = signed_in(client, session, "admin")
    secret = _issue(client, agency)
    prefix = "_".join(secret.split("_")[:3])
    response = submit(client, f"{AGENCIES}/keys/{prefix}/revoke", {}, AGENCIES)
    assert response.status_code == 303
    assert not _works(app, secret)
    assert f"Key {prefix} is revoked" in text(client.get(AGENCIES))
    assert audited(session, "agency_key.revoke", admin)


def test_revoking_an_unknown_key_is_refused_in_words(client, session):
    signed_in(client, session, "admin")
    submit(client, f"{AGENCIES}/keys/crm_ak_00000000/revoke", {}, AGENCIES)
    assert "no API key with prefix crm_ak_00000000" in text(client.get(AGENCIES))


# --- the catalogue ----------------------------------------------------------------------


def test_the_catalogue_shows_each_procedures_facts(client, session):
    signed_in(client, session, "coordinator")
    page = text(client.get(CATALOGUE))
    assert "Microdiscectomy" in page
    assert "45\N{EN DASH}60 minutes" in page
    assert "1\N{EN DASH}2 nights" in page
    assert "Nights in the city after discharge</dt><dd>3</dd>" in page
    assert "Arrive before admission</dt><dd>1 day</dd>" in page
    assert "week 6 return to activity: day 42 after treatment" in page
    assert "Yes, before the specialist consultation" in page


def test_the_catalogue_says_it_is_read_only_and_where_it_comes_from(client, session):
    signed_in(client, session, "coordinator")
    page = text(client.get(CATALOGUE))
    assert "Read-only here" in page
    assert "procedures.toml" in page


def test_a_specialist_reads_the_catalogue_and_sees_no_price(client, session):
    signed_in(client, session, "specialist")
    response = client.get(CATALOGUE)
    assert response.status_code == 200
    assert not re.search(r"€|\$|£|₺|\bEUR\b|\bUSD\b|price|commission", text(response), re.I)


def test_a_specialist_never_reaches_the_agencies_and_their_commission(client, session):
    _agency(session)
    signed_in(client, session, "specialist")
    response = client.get(AGENCIES)
    assert response.status_code == 403
    assert "Commission" not in text(response)
    assert "Agencies and API keys" not in text(client.get(ADMIN))

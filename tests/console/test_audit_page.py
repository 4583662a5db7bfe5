"""The audit trail page: managers read who saw which case, filtered; others are refused."""

from __future__ import annotations

from tests.console.test_report_pages import signed_in
from tests.helpers import API

AUDIT = "/console/audit"


def test_a_manager_sees_a_referrals_reads_by_its_r_number(client, session, factory):
    agency = factory.agency()
    referral = factory.referral(agency)
    client.get(
        f"{API}/referrals/{referral.id}", headers=agency.headers(**{"X-Request-ID": "seen-1"})
    )
    signed_in(client, session, "manager")
    page = client.get(AUDIT, query_string={"referral": f"R{referral.id}"})
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "<code>referral.read</code>" in html
    assert agency.actor.label in html and "seen-1" in html
    assert f'href="/console/referrals/{referral.id}"' in html


def test_a_wrong_reference_is_a_422_in_words(client, session):
    signed_in(client, session, "manager")
    page = client.get(AUDIT, query_string={"referral": "not a reference"})
    assert page.status_code == 422
    assert "referral: not a reference such as R-000013" in page.get_data(as_text=True)


def test_a_coordinator_gets_the_403_page(client, session):
    signed_in(client, session, "coordinator")
    assert client.get(AUDIT).status_code == 403

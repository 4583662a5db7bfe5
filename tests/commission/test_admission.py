"""The stay form's admission moves the referral into treatment: that accrues too, once."""

from datetime import timedelta

import pytest

from crm.core.db import utcnow
from tests.commission.support import entries_of
from tests.helpers import API
from tests.travel.support import accepted_referral, trip_around

pytestmark = pytest.mark.usefixtures("without_clinical_guards", "no_quiet_hours")

FIXED = {"kind": "fixed", "amount_minor": 30_000, "currency": "EUR"}


def test_recording_the_admission_accrues_the_agencys_commission(
    client, session, factory, agency, coordinator
):
    manager = factory.staff("manager")
    client.post(
        f"{API}/agencies/{agency.actor.agency_id}/contracts",
        json={**FIXED, "effective_from": "2020-01-01"},
        headers=manager.headers(),
    )
    referral = accepted_referral(factory, agency, coordinator)
    trip = trip_around(utcnow() - timedelta(days=4))
    client.put(f"{API}/referrals/{referral.id}/trip", json=trip, headers=coordinator.headers())
    admitted = (utcnow() - timedelta(days=3)).isoformat()
    response = client.post(
        f"{API}/referrals/{referral.id}/admission",
        json={"at": admitted},
        headers=coordinator.headers(),
    )
    assert response.json["stage"] == "in_treatment"
    assert [(e.kind, e.amount_minor) for e in entries_of(session, referral)] == [
        ("accrued", 30_000)
    ]

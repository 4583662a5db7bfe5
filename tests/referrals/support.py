"""Helpers for the referral API tests."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update

from crm.catalogue.models import Procedure
from crm.referrals.models import Referral
from tests.factories import referral_payload
from tests.helpers import API


def count_rows(session, model) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(model))


def submit(client, caller, **overrides):
    return client.post(
        f"{API}/referrals", json=referral_payload(**overrides), headers=caller.headers()
    )


def move(client, staff, referral_id: int, to: str, **extra):
    return client.post(
        f"{API}/referrals/{referral_id}/transitions",
        json={"to": to, **extra},
        headers=staff.headers(),
    )


def list_referrals(client, caller, **query):
    return client.get(f"{API}/referrals", query_string=query, headers=caller.headers())


def ids_of(response) -> list[int]:
    assert response.status_code == 200, response.json
    return [item["id"] for item in response.json["items"]]


def set_updated_at(session, referral_id: int, moment: datetime) -> None:
    session.execute(update(Referral).where(Referral.id == referral_id).values(updated_at=moment))
    session.commit()


def second_procedure(session) -> Procedure:
    """Knee replacement: the catalogue ships it; made here only if a test's catalogue lacks it."""
    shipped = session.scalar(select(Procedure).where(Procedure.code == "knee_replacement"))
    if shipped is not None:
        return shipped
    procedure = Procedure(
        code="knee_replacement",
        name="Total knee replacement",
        specialty="Orthopaedics",
        anaesthesia="regional",
        duration_minutes_min=60,
        duration_minutes_max=120,
        hospital_nights_min=2,
        hospital_nights_max=4,
        recovery_weeks_min=6,
        recovery_weeks_max=12,
    )
    session.add(procedure)
    session.commit()
    return procedure


# --- submitting -------------------------------------------------------------------------

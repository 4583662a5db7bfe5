"""Factories: build rows through the real operations, so tests exercise what the app does."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from crm.agencies.models import Agency
from crm.auth import operations as auth
from crm.auth.models import StaffUser
from crm.core.actors import Actor
from crm.referrals.models import Referral
from crm.referrals.operations import submit_referral
from crm.referrals.schemas import ReferralCreateArgs

_counter = itertools.count(1)


@dataclass
class Caller:
    """A credential and the headers that present it."""

    actor: Actor
    secret: str

    def headers(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret}", **extra}


def referral_payload(**overrides: Any) -> dict[str, Any]:
    n = next(_counter)
    payload: dict[str, Any] = {
        "procedure": "microdiscectomy",
        "agency_reference": f"REF-{n}",
        "patient": {
            "given_name": "Jonas",
            "family_name": f"Weber{n}",
            "date_of_birth": "1980-04-02",
            "sex": "male",
            "country": "DE",
            "phone": "+4915112345678",
            "email": f"jonas{n}@patient.example",
            "language": "de",
            "time_zone": "Europe/Berlin",
            "consents": {"sms": True, "email": True, "source": "signed intake form"},
        },
        "intake": {
            "complaints": ["severe_persistent_low_back_pain", "radiating_leg_pain"],
            "symptom_duration_weeks": 16,
            "treatments_tried": [{"treatment": "physical_therapy", "duration_weeks": 8}],
            "pain_score": 7,
            "notes": "pain worse when sitting",
        },
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(payload.get(key), dict):
            payload[key] = {**payload[key], **value}
        else:
            payload[key] = value
    return payload


class Factory:
    def __init__(self, session) -> None:
        self.session = session

    def agency(self, name: str | None = None) -> Caller:
        agency = Agency(name=name or f"Agency {next(_counter)}", country="DE")
        self.session.add(agency)
        self.session.flush()
        issued = auth.issue_agency_key(agency)
        self.session.commit()
        return Caller(Actor("agency", agency.id, agency.name, agency_id=agency.id), issued.secret)

    def staff(self, role: str = "coordinator") -> Caller:
        n = next(_counter)
        user: StaffUser = auth.create_staff_user(f"{role}{n}@hospital.example", f"{role} {n}", role)
        issued = auth.issue_staff_token(user)
        self.session.commit()
        return Caller(Actor("staff", user.id, user.name, role=role), issued.secret)

    def referral(self, caller: Caller, **overrides: Any) -> Referral:
        payload = ReferralCreateArgs().load(referral_payload(**overrides))
        referral = submit_referral(payload, caller.actor)
        self.session.commit()
        return referral

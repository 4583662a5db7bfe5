"""Patients at a given point of their journey, built through the real operations with
every guard on (an MRI uploaded, a candidate review, a plan offered, accepted, a trip
booked, admission and discharge recorded), committed for the served app to show."""

from __future__ import annotations

from datetime import timedelta

from crm.core.db import utcnow
from crm.patients import links
from crm.plans.operations import accept_plan, offer_plan
from crm.plans.queries import current_plan
from crm.plans.schemas import PlanArgs
from crm.referrals.models import Referral
from crm.referrals.operations import move_to_stage
from crm.reviews.operations import record_review
from crm.travel import operations as travel
from crm.travel.schemas import TripArgs
from tests.factories import Factory
from tests.plans.support import CANDIDATE, CONSENTS, patient_of, plan_body, upload_sample_mri
from tests.travel.support import trip_around

NAMES = {"en": "Emma", "de": "Jonas", "ar": "Layla"}


def token_of(referral: Referral) -> str:
    return links.token_for(links.link_for(referral.id))


def with_plan_offered(factory: Factory, language: str) -> Referral:
    agency, coordinator = factory.agency(), factory.staff("coordinator")
    patient = {"language": language, "given_name": NAMES.get(language, "Jonas")}
    referral = factory.referral(agency, patient=patient)
    move_to_stage(referral, "awaiting_mri", coordinator.actor)
    upload_sample_mri(referral, agency.actor)
    record_review(referral, dict(CANDIDATE), factory.staff("specialist").actor)
    offer_plan(referral, PlanArgs().load(plan_body()), coordinator.actor)
    factory.session.commit()
    return referral


def home_after_surgery(factory: Factory, language: str) -> Referral:
    """Discharged an hour ago (post_op): the first check-in is open on the page."""
    referral = with_plan_offered(factory, language)
    accept_plan(current_plan(referral.id), dict(CONSENTS), patient_of(referral))
    coordinator = factory.staff("coordinator")
    discharged_at = utcnow() - timedelta(hours=1)
    admitted_at = discharged_at - timedelta(days=2)
    travel.book_trip(referral, TripArgs().load(trip_around(admitted_at)), coordinator.actor)
    travel.record_admission(referral, admitted_at, coordinator.actor)
    travel.record_discharge(referral, discharged_at, coordinator.actor)
    factory.session.commit()
    assert referral.stage == "post_op"
    return referral

"""Informed consent: the information shown before the acceptance is built from the catalogue
and the plan, hashed, and checked again when the patient accepts."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select

from crm.catalogue.queries import procedure_by_code
from crm.core.audit import AuditEvent
from crm.plans.information import InformationChanged, ShownInformation, consent_information
from crm.plans.operations import accept_plan
from crm.plans.queries import current_plan
from tests.plans.support import CONSENTS, offer, patient_of


@pytest.fixture
def offered(client, coordinator, candidate):
    assert offer(client, coordinator, candidate).status_code == 201
    return candidate


def _information(plan, language="en"):
    return consent_information(plan, procedure_by_code(plan.procedure_code), language)


def _shown(plan, language="en"):
    return ShownInformation(plan.version, language, _information(plan, language).sha256)


def test_the_information_has_the_catalogue_facts_the_surgeon_and_the_plans_terms(session, offered):
    text = _information(current_plan(offered.id)).text
    for expected in (
        "About your treatment: Microdiscectomy",
        "version 1",
        "45 to 60 minutes",
        "General anaesthesia",
        "Risks to discuss with your surgeon",
        "Op. Dr. Example at Istanbul Spine Centre",
        "Plan to arrive 1 day before your admission to hospital.",
        "- anaesthesia",  # included
        "- flights",  # not included
        "Deposit (part of the total): €1,000.00",
        "This offer is valid until",
    ):
        assert expected in text, expected


def test_the_information_reads_in_the_patients_language(session, offered):
    text = _information(current_plan(offered.id), "de").text
    assert "Über Ihre Behandlung: Mikrodiskektomie" in text
    assert "Vollnarkose" in text and "Ihr Chirurg" in text
    assert "1.000,00" in text  # the deposit in German


def test_the_hash_is_the_sha256_of_the_text(session, offered):
    information = _information(current_plan(offered.id))
    assert information.sha256 == hashlib.sha256(information.text.encode()).hexdigest()


def test_accepting_what_was_shown_records_version_language_text_and_hash(session, offered):
    plan = current_plan(offered.id)
    shown = _shown(plan, "de")
    accept_plan(plan, CONSENTS, patient_of(offered), shown=shown)
    assert plan.status == "accepted"
    assert plan.consent_plan_version == 1
    assert plan.consent_language == "de"
    assert plan.consent_information_sha256 == shown.sha256
    assert "Mikrodiskektomie" in plan.consent_information_text
    audit = session.scalar(
        select(AuditEvent).where(
            AuditEvent.referral_id == offered.id, AuditEvent.action == "plan.accept"
        )
    )
    assert audit.detail["information_sha256"] == shown.sha256


def test_a_newer_version_offered_since_the_page_was_shown_is_refused(
    client, session, coordinator, offered
):
    first = current_plan(offered.id)
    shown = _shown(first)
    assert offer(client, coordinator, offered).status_code == 201
    with pytest.raises(InformationChanged):
        accept_plan(first, CONSENTS, patient_of(offered), shown=shown)
    assert current_plan(offered.id).status == "offered"


def test_information_changed_in_the_catalogue_since_it_was_shown_is_refused(session, offered):
    plan = current_plan(offered.id)
    shown = _shown(plan)
    spine = procedure_by_code("microdiscectomy")
    changed = {**spine.patient_information}
    changed["en"] = {**changed["en"], "risks": "A new paragraph about the risks."}
    spine.patient_information = changed
    session.flush()
    with pytest.raises(InformationChanged):
        accept_plan(plan, CONSENTS, patient_of(offered), shown=shown)
    assert plan.status == "offered" and plan.consent_information_sha256 is None


def test_a_wrong_version_with_the_right_hash_is_refused(session, offered):
    plan = current_plan(offered.id)
    shown = _shown(plan)
    with pytest.raises(InformationChanged):
        accept_plan(
            plan, CONSENTS, patient_of(offered), shown=ShownInformation(2, "en", shown.sha256)
        )

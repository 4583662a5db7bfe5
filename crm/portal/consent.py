"""Informed consent on the patient's page: the information before the consent, the plan's
PDF to keep, and the checklist and pre-operative instructions once travel is booked.

`consent_context(...)` gives the page's sections what they show; `shown_information(...)`
reads back what the page said it showed, for `accept_plan` to check.
"""

from __future__ import annotations

from typing import Any

from flask import current_app
from werkzeug.datastructures import MultiDict

from crm.catalogue.information import pre_operative_instructions, pre_travel_checklist
from crm.catalogue.models import Procedure
from crm.core.errors import NotFound
from crm.core.i18n import use_language
from crm.plans.information import (
    ConsentInformation,
    PlannedStay,
    ShownInformation,
    consent_information,
)
from crm.plans.models import TreatmentPlan
from crm.portal.i18n import RTL_LANGUAGES
from crm.portal.plan_pdf import PlanDocument, sections_of
from crm.referrals.models import Referral
from crm.referrals.stages import Stage

_SHA256_HEX = frozenset("0123456789abcdef")


def _procedure(plan: TreatmentPlan) -> Procedure | None:
    from crm.catalogue.queries import procedure_named

    try:
        return procedure_named(plan.procedure_code)
    except NotFound:
        return None


def _stay(trip: Any) -> PlannedStay | None:
    if trip is None:
        return None
    return PlannedStay(trip.admission_at, trip.discharge_at, trip.local_time_zone)


def information_for(
    referral: Referral, plan: TreatmentPlan, trip: Any = None
) -> ConsentInformation | None:
    """The information about `plan` in the page's language, with the trip's dates if any."""
    procedure = _procedure(plan)
    if procedure is None:
        return None
    language = use_language(referral.patient.language)
    return consent_information(plan, procedure, language, _stay(trip))


def consent_context(referral: Referral, plan: TreatmentPlan | None, trip: Any) -> dict[str, Any]:
    """What `consent_information.html` and `before_you_travel.html` show."""
    language = use_language(referral.patient.language)
    information = information_for(referral, plan, trip) if plan is not None else None
    before = None
    if trip is not None and referral.stage == Stage.TRAVEL_BOOKED:
        procedure = referral.procedure
        before = {
            "checklist": pre_travel_checklist(procedure, language),
            "instructions": pre_operative_instructions(procedure, language),
        }
    return {
        "consent_information": information,
        "consent_open": plan is not None
        and plan.status == "offered"
        and referral.stage == Stage.PLAN_OFFERED,
        "before_you_travel": before,
    }


def shown_information(form: MultiDict, referral: Referral) -> ShownInformation:
    """What the page sent back: the version and the hash it showed (blank if missing)."""
    raw_version = form.get("plan_version", "")
    version = int(raw_version) if raw_version.isascii() and raw_version.isdigit() else None
    sha256 = form.get("information_sha256", "")[:64].lower()
    if len(sha256) != 64 or not set(sha256) <= _SHA256_HEX:
        sha256 = ""
    return ShownInformation(
        version=version if version is not None and version < 2**31 else None,
        language=use_language(referral.patient.language),
        sha256=sha256,
    )


def hospital() -> tuple[str, str]:
    settings = current_app.config["CRM"]
    return settings["HOSPITAL_NAME"], settings["HOSPITAL_PHONE"]


def plan_document(referral: Referral, plan: TreatmentPlan, trip: Any) -> PlanDocument:
    """The plan, the information as shown (as accepted, once accepted) and the checklist."""
    from flask_babel import gettext as _

    from crm.plans.information import day_in, money

    language = use_language(referral.patient.language)
    hospital_name, hospital_phone = hospital()
    patient = referral.patient
    full_name = " ".join(part for part in (patient.given_name, patient.family_name) if part)
    header = [
        _("Reference: %(reference)s", reference=referral.reference),
        _("Patient: %(name)s", name=full_name),
        _("Hospital phone: %(phone)s", phone=hospital_phone),
    ]
    if plan.accepted_at is not None:
        header.append(_("Accepted on %(date)s", date=day_in(plan.accepted_at.date(), language)))
    table = [
        (
            f"{item.description} \N{MULTIPLICATION SIGN} {item.quantity}"
            if item.quantity > 1
            else item.description,
            money(item.amount_minor, plan.currency, language),
        )
        for item in plan.items
    ]
    table.append((_("Total price of the plan"), money(plan.total_minor, plan.currency, language)))
    sections = []
    if plan.notes_for_patient:
        sections.append((_("Notes from your coordinator"), (plan.notes_for_patient,)))
    text = plan.consent_information_text
    if text is None and (information := information_for(referral, plan, trip)) is not None:
        text = information.text
    sections += sections_of(text or "")
    procedure = _procedure(plan)
    if procedure is not None:
        sections.append((_("What to bring"), tuple(pre_travel_checklist(procedure, language))))
        sections.append(
            (_("Before the operation"), tuple(pre_operative_instructions(procedure, language)))
        )
    return PlanDocument(
        hospital_name=hospital_name,
        title=_("Your treatment plan, version %(version)s", version=plan.version),
        header=tuple(header),
        table=tuple(table),
        sections=tuple((heading, lines) for heading, lines in sections if lines),
        right_to_left=language in RTL_LANGUAGES,
    )

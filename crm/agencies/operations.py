"""Agencies: creating a partner. Operations flush, never commit, and audit.

An agency's API keys are issued and revoked by `crm.auth.operations` (issue_agency_key,
revoke_agency_key): credentials live with authentication.
"""

from __future__ import annotations

from marshmallow import ValidationError
from sqlalchemy import func, select

from crm.agencies.models import Agency
from crm.core import audit
from crm.core.actors import SYSTEM, Actor
from crm.core.errors import Conflict, ValidationFailed
from crm.extensions import db


def _checked(name: str, country: str, contact_email: str | None, commission_bp: int) -> dict:
    from crm.patients.validation import normalise_country, normalise_email

    errors: dict[str, str] = {}
    fields: dict = {"name": " ".join(name.split()), "commission_basis_points": commission_bp}
    if not fields["name"] or len(fields["name"]) > 200:
        errors["name"] = "must be 1 to 200 characters"
    try:
        fields["country"] = normalise_country(country)
    except ValidationError as exc:
        errors["country"] = " ".join(exc.messages)
    try:
        fields["contact_email"] = normalise_email(contact_email) if contact_email else None
    except ValidationError as exc:
        errors["contact_email"] = " ".join(exc.messages)
    if not 0 <= commission_bp <= 10_000:
        errors["commission_basis_points"] = "must be between 0 and 10000 (0% to 100%)"
    if errors:
        raise ValidationFailed(errors)
    return fields


def create_agency(
    name: str,
    country: str,
    contact_email: str | None = None,
    commission_basis_points: int = 0,
    actor: Actor = SYSTEM,
) -> Agency:
    """A new, active agency with no keys yet (issue one with `issue_agency_key`)."""
    fields = _checked(name, country, contact_email, commission_basis_points)
    taken = db.session.scalar(
        select(Agency.id).where(func.lower(Agency.name) == fields["name"].lower())
    )
    if taken:
        raise Conflict(f"An agency named {fields['name']!r} exists already.", field="name")
    agency = Agency(**fields)
    db.session.add(agency)
    db.session.flush()
    audit.record(actor, "agency.create", agency_id=agency.id, country=agency.country)
    return agency

"""FHIR endpoints: a referral as a Bundle, and a referral submitted as a Bundle."""

from __future__ import annotations

import json

from flask import Response, url_for
from marshmallow import INCLUDE, Schema, fields, validate

from crm.auth.guards import any_caller, caller_scope, current_actor
from crm.core import audit
from crm.core.blueprint import Blueprint
from crm.core.errors import DomainError
from crm.core.http import accepts
from crm.core.idempotency import idempotent
from crm.core.schemas import Args, QueryArgs
from crm.fhir import importing
from crm.fhir.export import referral_bundle
from crm.referrals import operations, queries
from crm.referrals.schemas import ReferralDetailSchema

FHIR_JSON = "application/fhir+json"

blp = Blueprint("fhir", __name__, description="FHIR R4: referrals as Bundles, both ways")


class FormatArgs(QueryArgs):
    _format = fields.String(
        data_key="_format",
        validate=validate.OneOf(["json", "application/json", FHIR_JSON]),
        metadata={"description": "FHIR's format parameter; every value answers FHIR JSON"},
    )


class FhirResourceSchema(Schema):
    class Meta:
        unknown = INCLUDE

    resourceType = fields.String(required=True, metadata={"example": "Patient"})


class FhirEntrySchema(Schema):
    class Meta:
        unknown = INCLUDE

    fullUrl = fields.String()
    resource = fields.Nested(FhirResourceSchema)


class FhirBundleSchema(Schema):
    """A FHIR R4 Bundle; each entry a FHIR resource (see the README's FHIR mapping)."""

    class Meta:
        unknown = INCLUDE

    resourceType = fields.String(required=True, metadata={"example": "Bundle", "enum": ["Bundle"]})
    type = fields.String(metadata={"example": "collection"})
    entry = fields.List(fields.Nested(FhirEntrySchema))


class FhirBundleArgs(Args):
    """Read as loosely as FHIR is written: any element may come (a Bundle's `id`, `meta`,
    `timestamp`, ...), and the mapping reads what it needs and names FHIR paths. Nothing
    here reaches a row unread: only what `importing` maps is submitted."""

    class Meta:
        unknown = INCLUDE

    resourceType = fields.Raw(metadata={"example": "Bundle"})
    type = fields.Raw(metadata={"example": "transaction"})
    entry = fields.Raw(metadata={"description": "a Patient, a ServiceRequest, Consents"})


@blp.get("/referrals/<int:referral_id>/fhir")
@any_caller
@blp.arguments(FormatArgs, location="query")
@blp.response(200, FhirBundleSchema, content_type=FHIR_JSON)
def referral_as_fhir(_args, referral_id: int):
    """The referral as a FHIR R4 Bundle (collection): Patient, Organization, ServiceRequest,
    Task, DocumentReference, Communication, QuestionnaireResponse, Consent.

    Who sees what is as `GET /referrals/{id}` and the endpoints of each record allow."""
    actor = current_actor()
    referral = queries.referral_for(actor, referral_id)
    audit.record(actor, "referral.read", referral.id, format="fhir")
    body = json.dumps(referral_bundle(referral, actor), ensure_ascii=False)
    return Response(body, status=200, mimetype=FHIR_JSON)


@blp.post("/referrals/fhir")
@idempotent(caller_scope)
@accepts(FHIR_JSON, "application/json")
@any_caller
@blp.arguments(FhirBundleArgs, content_type=FHIR_JSON)
@blp.response(201, ReferralDetailSchema)
def submit_fhir_referral(bundle):
    """Submit a referral as a FHIR Bundle (transaction or collection): one Patient, one
    ServiceRequest, optional Consents. The same submit as `POST /referrals`: the answer,
    Location, idempotency and duplicate checks are its own; a 422 names the FHIR path."""
    args, origin_of = importing.referral_args(bundle)
    try:
        referral = operations.submit_referral(args, current_actor())
    except DomainError as exc:
        raise importing.renamed(exc, origin_of) from None
    location = url_for("referrals.get_referral", referral_id=referral.id)
    return queries.detail_of(referral, current_actor()), 201, {"Location": location}

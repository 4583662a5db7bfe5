from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from crm.core.schemas import Args, QueryArgs
from crm.reviews.models import DECISIONS


class ReviewArgs(Args):
    decision = fields.String(required=True, validate=validate.OneOf(DECISIONS))
    findings = fields.String(load_default="", validate=validate.Length(max=10_000))
    disc_level = fields.String(
        validate=validate.Regexp(r"^[CTLS]\d{1,2}(-[CTLS]?\d{1,2})?$", error="e.g. L4-L5 or L5-S1"),
        allow_none=True,
        metadata={"example": "L4-L5"},
    )
    recommended_procedure = fields.String(allow_none=True, metadata={"example": "microdiscectomy"})
    risks_to_discuss = fields.String(load_default="", validate=validate.Length(max=5_000))
    notes = fields.String(load_default="", validate=validate.Length(max=10_000))
    request_to_patient = fields.String(
        allow_none=True,
        validate=validate.Length(min=1, max=2_000),
        metadata={"description": "required with need_more_information; sent to the patient"},
    )

    @validates_schema
    def decision_needs(self, data: dict[str, Any], **_: Any) -> None:
        if data["decision"] == "need_more_information" and not data.get("request_to_patient"):
            raise ValidationError("say what the patient should send", "request_to_patient")
        if data["decision"] == "candidate" and not data.get("recommended_procedure"):
            raise ValidationError("name the procedure recommended", "recommended_procedure")


class ReviewSchema(Schema):
    id = fields.Integer()
    referral_id = fields.Integer()
    specialist = fields.String(attribute="specialist_label")
    decision = fields.String()
    findings = fields.String()
    disc_level = fields.String(allow_none=True)
    recommended_procedure = fields.String(allow_none=True)
    risks_to_discuss = fields.String()
    notes = fields.String()
    request_to_patient = fields.String(allow_none=True)
    created_at = fields.DateTime()


class QueueItemSchema(Schema):
    referral_id = fields.Integer()
    patient = fields.String()
    agency = fields.String(allow_none=True)
    procedure = fields.String()
    in_review_since = fields.DateTime()
    due_at = fields.DateTime()
    breached = fields.Boolean()
    hours_waiting = fields.Integer()


class QueueArgs(QueryArgs):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=100))
    breached_only = fields.Boolean(load_default=False)

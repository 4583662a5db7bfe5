from __future__ import annotations

from typing import Any

from marshmallow import INCLUDE, Schema, ValidationError, fields, validate, validates_schema

from crm.core.schemas import Args, QueryArgs
from crm.reviews.models import DECISIONS


class ReviewArgs(Args):
    """The decision and its words, and the procedure's own findings beside them, each
    named by its catalogue code (microdiscectomy: `disc_level`, e.g. `L4-L5`; knee
    replacement: `side`, `kellgren_lawrence_grade`): checked by the operation against the
    referral's procedure, so an unknown field or a value not in its list is a 422."""

    class Meta:
        unknown = INCLUDE  # the procedure's review fields

    decision = fields.String(required=True, validate=validate.OneOf(DECISIONS))
    findings = fields.String(load_default="", validate=validate.Length(max=10_000))
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
    procedure_fields = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        metadata={"description": "the procedure's findings by catalogue code"},
    )
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

"""The privacy endpoints' input (`...Args`) and answers (`...Schema`)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from crm.core.schemas import Args, QueryArgs
from crm.privacy.operations import MAX_REASON

REASON = fields.String(
    required=True,
    validate=validate.Length(min=1, max=MAX_REASON),
    metadata={"description": "why: the request's reference, the policy, the dispute"},
)


class ReasonArgs(Args):
    reason = REASON


class RetentionArgs(QueryArgs):
    horizon_days = fields.Integer(
        load_default=0,
        validate=validate.Range(min=0, max=3650),
        metadata={"description": "also list what falls due within this many days"},
    )


class ErasureSchema(Schema):
    patient_ids = fields.List(fields.Integer(), metadata={"description": "the rows erased"})
    referral_ids = fields.List(fields.Integer())
    documents_removed = fields.Integer()
    files_removed = fields.Integer()
    already_erased = fields.Boolean(metadata={"description": "it had been erased before"})


class HoldSchema(Schema):
    id = fields.Integer()
    patient_id = fields.Integer()
    reason = fields.String()
    set_at = fields.DateTime()
    set_by_label = fields.String(data_key="set_by")
    lifted_at = fields.DateTime(allow_none=True)
    lifted_by_label = fields.String(data_key="lifted_by", allow_none=True)
    lift_reason = fields.String(allow_none=True)


class PrivacyStatusSchema(Schema):
    patient_ids = fields.List(fields.Integer())
    referral_ids = fields.List(fields.Integer())
    erased_at = fields.DateTime(allow_none=True)
    holds = fields.List(fields.Nested(HoldSchema))
    erasable = fields.Boolean()
    refusal = fields.String(allow_none=True, metadata={"description": "why not, in words"})


class RetentionItemSchema(Schema):
    patient_id = fields.Integer()
    basis = fields.String(metadata={"description": "completed or lost"})
    ended_at = fields.DateTime()
    due_at = fields.DateTime()
    held = fields.Boolean(metadata={"description": "a legal hold will skip it"})


class RetentionSchema(Schema):
    days_after_completed = fields.Integer()
    days_after_lost = fields.Integer()
    items = fields.List(fields.Nested(RetentionItemSchema))

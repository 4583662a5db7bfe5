"""The audit trail's query (`AuditArgs`) and answer (`AuditPageSchema`)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from crm.core.schemas import QueryArgs
from crm.referrals.schemas import ROW_ID

ACTOR_TYPES = ("agency", "staff", "patient", "system")


class AuditArgs(QueryArgs):
    referral_id = fields.Integer(
        validate=ROW_ID, metadata={"description": "its events and the lists that showed it"}
    )
    actor_type = fields.String(validate=validate.OneOf(ACTOR_TYPES))
    actor_id = fields.Integer(validate=ROW_ID)
    action = fields.String(
        validate=validate.Length(min=1, max=64),
        metadata={"description": "exact (referral.read), or a prefix ending in a dot (referral.)"},
    )
    remote_addr = fields.String(validate=validate.Length(min=1, max=64))
    request_id = fields.String(validate=validate.Length(min=1, max=64))
    since = fields.AwareDateTime(metadata={"description": "from this moment (inclusive)"})
    until = fields.AwareDateTime(metadata={"description": "before this moment"})
    cursor = fields.String(validate=validate.Length(max=200))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))

    @validates_schema
    def _range(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("since") and data.get("until") and data["since"] >= data["until"]:
            raise ValidationError("must be after since", "until")


class AuditEventSchema(Schema):
    id = fields.Integer()
    occurred_at = fields.DateTime()
    actor_type = fields.String()
    actor_id = fields.Integer(allow_none=True)
    actor_label = fields.String()
    action = fields.String()
    referral_id = fields.Integer(allow_none=True)
    detail = fields.Dict()
    request_id = fields.String(allow_none=True)
    remote_addr = fields.String(allow_none=True)


class AuditPageSchema(Schema):
    items = fields.List(fields.Nested(AuditEventSchema))
    next_cursor = fields.String(allow_none=True)

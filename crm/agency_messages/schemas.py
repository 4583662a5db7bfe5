from __future__ import annotations

from marshmallow import Schema, fields, validate

from crm.agency_messages.models import DIRECTIONS
from crm.core.schemas import Args

MAX_BODY = 5000


class AgencyMessageArgs(Args):
    body = fields.String(required=True, validate=validate.Length(min=1, max=MAX_BODY))


class AgencyMessageSchema(Schema):
    id = fields.Integer()
    referral_id = fields.Integer()
    direction = fields.String(
        validate=validate.OneOf(DIRECTIONS),
        metadata={
            "description": "`to_agency`: the hospital wrote to the agency;"
            " `from_agency`: the agency wrote to the hospital"
        },
    )
    body = fields.String()
    author = fields.String(attribute="author_label")
    created_at = fields.DateTime()
    read_at = fields.DateTime(
        allow_none=True, metadata={"description": "when the other side first read it"}
    )

"""The staff directory's query and the shapes of staff users and of the caller."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from crm.auth.models import STAFF_ROLES
from crm.core.schemas import QueryArgs

ROLE = validate.OneOf(STAFF_ROLES)


class StaffListArgs(QueryArgs):
    role = fields.List(
        fields.String(validate=ROLE), metadata={"description": "one or several roles"}
    )
    active = fields.Boolean(metadata={"description": "only active (true) or inactive (false)"})


class StaffUserSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    email = fields.String()
    role = fields.String(metadata={"enum": list(STAFF_ROLES)})
    active = fields.Boolean()


class StaffListSchema(Schema):
    items = fields.List(fields.Nested(StaffUserSchema))


class MeSchema(Schema):
    kind = fields.String(metadata={"enum": ["staff", "agency"]})
    id = fields.Integer(metadata={"description": "the staff user's id, or the agency's"})
    name = fields.String()
    email = fields.String(allow_none=True, metadata={"description": "staff only"})
    role = fields.String(
        allow_none=True, metadata={"enum": list(STAFF_ROLES), "description": "staff only"}
    )

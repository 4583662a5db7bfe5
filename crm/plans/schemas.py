from __future__ import annotations

from datetime import date
from typing import Any

from babel.numbers import list_currencies
from marshmallow import Schema, ValidationError, fields, validate, validates, validates_schema

from crm.core.db import utcnow
from crm.core.schemas import Args
from crm.plans.models import LINE_KINDS

MINOR = validate.Range(min=0, max=100_000_000_000)


class LineItemArgs(Args):
    kind = fields.String(required=True, validate=validate.OneOf(LINE_KINDS))
    description = fields.String(required=True, validate=validate.Length(min=1, max=300))
    quantity = fields.Integer(load_default=1, strict=True, validate=validate.Range(min=1, max=1000))
    unit_price_minor = fields.Integer(
        required=True,
        strict=True,
        validate=MINOR,
        metadata={"description": "integer minor units of the plan's currency (cents, kuruş)"},
    )


class PlanArgs(Args):
    """A new plan version. Totals are computed from the items: a `total` is refused."""

    procedure = fields.String(required=True, metadata={"example": "microdiscectomy"})
    hospital = fields.String(required=True, validate=validate.Length(min=1, max=200))
    surgeon = fields.String(required=True, validate=validate.Length(min=1, max=200))
    currency = fields.String(required=True, metadata={"example": "EUR"})
    items = fields.List(
        fields.Nested(LineItemArgs), required=True, validate=validate.Length(min=1, max=50)
    )
    inclusions = fields.List(fields.String(validate=validate.Length(max=200)), load_default=list)
    exclusions = fields.List(fields.String(validate=validate.Length(max=200)), load_default=list)
    deposit_minor = fields.Integer(load_default=0, strict=True, validate=MINOR)
    valid_until = fields.Date(required=True)
    notes_for_patient = fields.String(load_default="", validate=validate.Length(max=5000))

    @validates("currency")
    def iso_4217(self, value: str, **_: Any) -> None:
        if value not in list_currencies():
            raise ValidationError("not an ISO 4217 currency code, e.g. EUR, USD, TRY")

    @validates("valid_until")
    def in_the_future(self, value: date, **_: Any) -> None:
        if value <= utcnow().date():
            raise ValidationError("must be a future date (UTC)")

    @validates_schema
    def deposit_within_total(self, data: dict[str, Any], **_: Any) -> None:
        total = sum(i["quantity"] * i["unit_price_minor"] for i in data.get("items", []))
        if data.get("deposit_minor", 0) > total:
            raise ValidationError("may not exceed the plan's total", "deposit_minor")


class AcceptanceArgs(Args):
    treatment_information_acknowledged = fields.Boolean(required=True)
    data_processing = fields.Boolean(required=True)


class LineItemSchema(Schema):
    kind = fields.String()
    description = fields.String()
    quantity = fields.Integer()
    unit_price_minor = fields.Integer()
    amount_minor = fields.Integer()


class TreatmentPlanSchema(Schema):
    id = fields.Integer()
    referral_id = fields.Integer()
    version = fields.Integer()
    status = fields.String()
    procedure = fields.String(attribute="procedure_code")
    hospital = fields.String()
    surgeon = fields.String()
    currency = fields.String()
    items = fields.List(fields.Nested(LineItemSchema))
    total_minor = fields.Integer()
    deposit_minor = fields.Integer()
    inclusions = fields.List(fields.String())
    exclusions = fields.List(fields.String())
    valid_until = fields.Date()
    notes_for_patient = fields.String()
    created_at = fields.DateTime()
    superseded_at = fields.DateTime(allow_none=True)
    accepted_at = fields.DateTime(allow_none=True)

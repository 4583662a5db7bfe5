from __future__ import annotations

from typing import Any

from babel.numbers import list_currencies
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from crm.commission.models import CONTRACT_KINDS
from crm.core.schemas import Args, QueryArgs

MINOR = validate.Range(min=1, max=100_000_000_000)


class ContractArgs(Args):
    """A percentage of the accepted plan's total (`basis_points`, 100 = 1%) or a fixed
    `amount_minor` in `currency` per procedure; `procedure_code` empty: every procedure."""

    kind = fields.String(required=True, validate=validate.OneOf(CONTRACT_KINDS))
    basis_points = fields.Integer(validate=validate.Range(min=1, max=10_000))
    amount_minor = fields.Integer(validate=MINOR)
    currency = fields.String(metadata={"example": "EUR"})
    procedure_code = fields.String(
        validate=validate.Length(min=1, max=64), metadata={"example": "microdiscectomy"}
    )
    effective_from = fields.Date(required=True)
    effective_to = fields.Date(metadata={"description": "last day in force (inclusive)"})

    @validates_schema
    def terms_of_the_kind(self, data: dict[str, Any], **_: Any) -> None:
        errors: dict[str, str] = {}
        if data.get("kind") == "percentage":
            if data.get("basis_points") is None:
                errors["basis_points"] = "a percentage contract needs basis_points (100 = 1%)"
            for name in ("amount_minor", "currency"):
                if name in data:
                    errors[name] = "a percentage contract takes no fixed amount or currency"
        elif data.get("kind") == "fixed":
            if data.get("amount_minor") is None:
                errors["amount_minor"] = "a fixed contract needs amount_minor"
            if data.get("currency") not in list_currencies():
                errors["currency"] = "not an ISO 4217 currency code, e.g. EUR, USD, TRY"
            if "basis_points" in data:
                errors["basis_points"] = "a fixed contract takes no basis_points"
        start, end = data.get("effective_from"), data.get("effective_to")
        if start and end and end < start:
            errors["effective_to"] = "must be on or after effective_from"
        if errors:
            raise ValidationError(errors)


class ContractSchema(Schema):
    id = fields.Integer()
    agency_id = fields.Integer()
    kind = fields.String()
    basis_points = fields.Integer(allow_none=True)
    amount_minor = fields.Integer(allow_none=True)
    currency = fields.String(allow_none=True)
    procedure_code = fields.String(allow_none=True)
    effective_from = fields.Date()
    effective_to = fields.Date(allow_none=True)
    created_at = fields.DateTime()


class StatementArgs(QueryArgs):
    format = fields.String(
        load_default="json",
        validate=validate.OneOf(["json", "csv", "pdf"]),
        metadata={
            "description": "csv: the lines, then a total row per currency and kind; pdf: the "
            "statement to keep, marked 'draft - not issued' until it is issued"
        },
    )


class StatementLineSchema(Schema):
    entry_id = fields.Integer()
    referral_id = fields.Integer()
    reference = fields.String(metadata={"example": "R-000013"})
    kind = fields.String()
    reason = fields.String(
        metadata={
            "description": "why the entry exists: treatment, payable, refund, cancelled, "
            "reattributed"
        }
    )
    amount_minor = fields.Integer()
    currency = fields.String()
    created_at = fields.DateTime()


class CurrencyTotalSchema(Schema):
    currency = fields.String()
    accrued_minor = fields.Integer()
    reversed_minor = fields.Integer()
    net_minor = fields.Integer()
    payable_minor = fields.Integer()


class StatementSchema(Schema):
    agency_id = fields.Integer()
    agency_name = fields.String()
    month = fields.String()
    status = fields.String(metadata={"description": "open, or issued (frozen)"})
    issued_at = fields.DateTime(allow_none=True)
    issued_by = fields.String(allow_none=True)
    lines = fields.List(fields.Nested(StatementLineSchema))
    totals = fields.List(fields.Nested(CurrencyTotalSchema))


class RefundArgs(Args):
    """Money given back to the patient on the accepted plan, in the plan's currency."""

    amount_minor = fields.Integer(required=True, validate=MINOR, metadata={"example": 68_000})
    currency = fields.String(
        required=True, validate=validate.Length(equal=3), metadata={"example": "EUR"}
    )
    reason = fields.String(
        required=True,
        validate=validate.Length(min=1, max=500),
        metadata={"example": "second night not needed"},
    )


class RefundReversalSchema(Schema):
    agency_id = fields.Integer()
    amount_minor = fields.Integer(metadata={"description": "negative: commission reversed"})
    currency = fields.String()


class RefundSchema(Schema):
    id = fields.Integer()
    referral_id = fields.Integer()
    amount_minor = fields.Integer()
    currency = fields.String()
    reason = fields.String()
    recorded_by = fields.String()
    created_at = fields.DateTime()
    reversed = fields.List(
        fields.Nested(RefundReversalSchema),
        metadata={"description": "the commission entries the refund reversed"},
    )

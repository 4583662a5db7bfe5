"""Nudge rule input (file rows and admin API) and output."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from crm.core.schemas import Args
from crm.messaging.composing.templates import KINDS
from crm.referrals.stages import ALL_STAGES

CHANNEL = validate.OneOf(["whatsapp", "sms", "email"])
PHONE_CHANNELS = frozenset({"sms", "whatsapp"})
MINUTES = validate.Range(min=-525_600, max=525_600)


class NudgeRuleArgs(Args):
    code = fields.String(
        required=True, validate=validate.Regexp(r"^[a-z][a-z0-9_]{1,63}$", error="lower_snake_case")
    )
    description = fields.String(load_default="", validate=validate.Length(max=2000))
    trigger = fields.String(required=True, validate=validate.OneOf(["stage_entered", "date"]))
    stage = fields.String(validate=validate.OneOf([str(s) for s in ALL_STAGES]), allow_none=True)
    date_name = fields.String(
        validate=validate.OneOf(
            ["travel_date", "admission_date", "discharge_date", "check_in_due"]
        ),
        allow_none=True,
    )
    offset_minutes = fields.Integer(load_default=0, validate=MINUTES)
    audience = fields.String(
        required=True, validate=validate.OneOf(["patient", "coordinator", "agency"])
    )
    channels = fields.List(
        fields.String(validate=CHANNEL), required=True, validate=validate.Length(min=1, max=3)
    )
    fallback = fields.Boolean(load_default=True)
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    max_repeats = fields.Integer(load_default=0, validate=validate.Range(min=0, max=20))
    repeat_every_minutes = fields.Integer(load_default=0, validate=validate.Range(min=0))
    stop_when_stage_changes = fields.Boolean(load_default=True)
    task_after_last = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(min=1, max=200)
    )
    active = fields.Boolean(load_default=True)

    @validates_schema
    def consistent(self, data: dict[str, Any], **_: Any) -> None:
        errors: dict[str, str] = {}
        trigger = data.get("trigger")
        if trigger == "stage_entered" and not data.get("stage"):
            errors["stage"] = "required when trigger is stage_entered"
        if trigger == "date" and not data.get("date_name"):
            errors["date_name"] = "required when trigger is date"
        if trigger == "date" and data.get("stage"):
            errors["stage"] = "only for trigger stage_entered"
        if trigger == "stage_entered" and data.get("date_name"):
            errors["date_name"] = "only for trigger date"
        if data.get("max_repeats") and not data.get("repeat_every_minutes"):
            errors["repeat_every_minutes"] = "required (> 0) when max_repeats > 0"
        staff = data.get("audience") in {"coordinator", "agency"}
        if staff and PHONE_CHANNELS & set(data.get("channels", [])):
            errors["channels"] = "staff and agencies are reached by email only"
        if len(set(data.get("channels", []))) != len(data.get("channels", [])):
            errors["channels"] = "each channel once"
        if errors:
            raise ValidationError(errors)


class NudgeRuleUpdateArgs(Args):
    description = fields.String(validate=validate.Length(max=2000))
    offset_minutes = fields.Integer(validate=MINUTES)
    channels = fields.List(fields.String(validate=CHANNEL), validate=validate.Length(min=1, max=3))
    fallback = fields.Boolean()
    max_repeats = fields.Integer(validate=validate.Range(min=0, max=20))
    repeat_every_minutes = fields.Integer(validate=validate.Range(min=0))
    task_after_last = fields.String(allow_none=True, validate=validate.Length(min=1, max=200))
    active = fields.Boolean()


class NudgeRuleSchema(Schema):
    id = fields.Integer()
    code = fields.String()
    description = fields.String()
    trigger = fields.String()
    stage = fields.String(allow_none=True)
    date_name = fields.String(allow_none=True)
    offset_minutes = fields.Integer()
    audience = fields.String()
    channels = fields.List(fields.String())
    fallback = fields.Boolean()
    kind = fields.String()
    max_repeats = fields.Integer()
    repeat_every_minutes = fields.Integer()
    stop_when_stage_changes = fields.Boolean()
    task_after_last = fields.String(allow_none=True, validate=validate.Length(min=1, max=200))
    active = fields.Boolean()
    updated_at = fields.DateTime()

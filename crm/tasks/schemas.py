"""Task input (`...Args`) and output (`...Schema`)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from crm.core.schemas import Args, QueryArgs
from crm.referrals.schemas import ROW_ID
from crm.tasks.models import TASK_PRIORITIES, TASK_SOURCES

VIEWS = ("mine", "unassigned", "all")
DUE = ("open", "today", "overdue")
STATUSES = ("open", "done", "cancelled")


class TaskListArgs(QueryArgs):
    view = fields.String(
        load_default="mine",
        validate=validate.OneOf(VIEWS),
        metadata={"description": "mine (owned by you), unassigned (the shared queue), all"},
    )
    due = fields.String(
        load_default="open",
        validate=validate.OneOf(DUE),
        metadata={
            "description": "open: every open task; today: open and due today in your own "
            "time zone; overdue: open and past due"
        },
    )
    referral_id = fields.Integer(validate=ROW_ID)
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


class TaskCreateArgs(Args):
    referral_id = fields.Integer(required=True, validate=ROW_ID)
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    detail = fields.String(load_default="", validate=validate.Length(max=5000))
    priority = fields.String(load_default="normal", validate=validate.OneOf(TASK_PRIORITIES))
    due_at = fields.AwareDateTime(
        load_default=None, allow_none=True, metadata={"description": "default now"}
    )
    owner_id = fields.Integer(
        load_default=None,
        allow_none=True,
        validate=ROW_ID,
        metadata={"description": "default the referral's owner"},
    )


class TaskUpdateArgs(Args):
    status = fields.String(validate=validate.OneOf(STATUSES))
    owner_id = fields.Integer(allow_none=True, validate=ROW_ID)
    due_at = fields.AwareDateTime()
    priority = fields.String(validate=validate.OneOf(TASK_PRIORITIES))

    @validates_schema
    def something_to_change(self, data: dict[str, Any], **_: Any) -> None:
        if not data:
            raise ValidationError("give at least one of status, owner_id, due_at, priority")


class TaskSchema(Schema):
    id = fields.Integer()
    referral_id = fields.Integer(allow_none=True)
    owner_id = fields.Integer(allow_none=True)
    title = fields.String()
    detail = fields.String()
    source = fields.String(metadata={"description": ", ".join(TASK_SOURCES)})
    priority = fields.String()
    status = fields.String()
    due_at = fields.DateTime(metadata={"description": "UTC"})
    due_at_local = fields.String(metadata={"description": "in the caller's time zone"})
    overdue = fields.Boolean()
    created_at = fields.DateTime()
    completed_at = fields.DateTime(allow_none=True)


class TaskPageSchema(Schema):
    time_zone = fields.String(metadata={"description": "the caller's zone, for `today`"})
    items = fields.List(fields.Nested(TaskSchema))

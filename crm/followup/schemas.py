"""Follow-up input (`...Args`) and output (`...Schema`)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from crm.core.schemas import Args

SCORE = validate.Range(min=0, max=10)
WOUND_STATES = ("healing_well", "red_or_swollen", "discharge", "opened")
ALERTS = ("none", "rising", "high_score", "red_flag")  # least to most severe


class CheckInAnswersArgs(Args):
    back_pain = fields.Integer(required=True, validate=SCORE, metadata={"description": "0-10"})
    leg_pain = fields.Integer(required=True, validate=SCORE, metadata={"description": "0-10"})
    numbness = fields.Boolean(required=True)
    weakness = fields.Boolean(required=True)
    wound = fields.String(required=True, validate=validate.OneOf(WOUND_STATES))
    bladder_or_bowel_trouble = fields.Boolean(
        required=True, metadata={"description": "new trouble passing urine or stool"}
    )
    saddle_numbness = fields.Boolean(
        required=True, metadata={"description": "numbness between the legs / around the bottom"}
    )
    fever = fields.Boolean(
        required=True,
        metadata={"description": "a temperature of 38 °C or more, or feeling feverish"},
    )
    free_text = fields.String(load_default="", validate=validate.Length(max=2000))


class CheckInSchema(Schema):
    label = fields.String()
    position = fields.Integer()
    due_at = fields.DateTime()
    answered_at = fields.DateTime(allow_none=True)
    status = fields.Function(
        lambda c: "answered" if c.answered_at else "unanswered",
        metadata={"description": "answered or unanswered"},
    )
    back_pain = fields.Integer(allow_none=True)
    leg_pain = fields.Integer(allow_none=True)
    numbness = fields.Boolean(allow_none=True)
    weakness = fields.Boolean(allow_none=True)
    wound = fields.String(allow_none=True)
    bladder_or_bowel_trouble = fields.Boolean(allow_none=True)
    saddle_numbness = fields.Boolean(allow_none=True)
    fever = fields.Boolean(allow_none=True)
    free_text = fields.String(allow_none=True)
    alert = fields.String(metadata={"description": ", ".join(ALERTS)})

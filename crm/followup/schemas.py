"""Follow-up input (`...Args`) and output (`...Schema`).

The answers are the procedure's own questions (catalogue data), so the body is checked
twice: here only that it is an object of answers, then by the operation against the
referral's procedure (`CheckInForm.answers_schema`), which names any unknown question,
missing answer or score out of range.
"""

from __future__ import annotations

from marshmallow import INCLUDE, Schema, fields, validate

from crm.catalogue.check_in import ALERTS, FREE_TEXT_MAX
from crm.core.schemas import Args


class CheckInAnswersArgs(Args):
    """One answer per question of the procedure's catalogue row, keyed by its code
    (microdiscectomy: `back_pain`, `leg_pain` 0-10, `numbness`, `weakness`, `wound`,
    `bladder_or_bowel_trouble`, `saddle_numbness`, `fever`), and free text."""

    class Meta:
        unknown = INCLUDE  # the procedure's questions: checked by the operation

    free_text = fields.String(load_default="", validate=validate.Length(max=FREE_TEXT_MAX))


class CheckInSchema(Schema):
    label = fields.String()
    position = fields.Integer()
    due_at = fields.DateTime()
    answered_at = fields.DateTime(allow_none=True)
    status = fields.Function(
        lambda c: "answered" if c.answered_at else "unanswered",
        metadata={"description": "answered or unanswered"},
    )
    answers = fields.Dict(
        keys=fields.String(),
        metadata={"description": "the answers keyed by the catalogue's question codes"},
    )
    free_text = fields.String(allow_none=True)
    alert = fields.String(metadata={"description": ", ".join(ALERTS)})

from __future__ import annotations

from sqlalchemy import select

from crm.auth.guards import caller_scope, current_actor, staff_only
from crm.core import audit
from crm.core.blueprint import Blueprint
from crm.core.errors import Conflict
from crm.core.idempotency import idempotent
from crm.extensions import db
from crm.nudges import operations
from crm.nudges.models import NudgeRule
from crm.nudges.schemas import NudgeRuleArgs, NudgeRuleSchema, NudgeRuleUpdateArgs

blp = Blueprint("nudge_rules", __name__, description="Nudge rules: what goes out by itself")


@blp.get("/nudge-rules")
@staff_only("manager")
@blp.response(200, NudgeRuleSchema(many=True))
def list_rules():
    return db.session.scalars(select(NudgeRule).order_by(NudgeRule.code)).all()


@blp.post("/nudge-rules")
@idempotent(caller_scope)
@staff_only("admin")
@blp.arguments(NudgeRuleArgs)
@blp.response(201, NudgeRuleSchema)
def create_rule(args):
    """Add a rule; it applies to referrals entering its stage (or date) from now on."""
    if db.session.scalar(select(NudgeRule.id).where(NudgeRule.code == args["code"])):
        raise Conflict(f"a rule {args['code']!r} exists already", field="code")
    rule = NudgeRule(**args)
    db.session.add(rule)
    db.session.flush()
    audit.record(current_actor(), "nudge_rule.create", None, code=rule.code)
    return rule


@blp.patch("/nudge-rules/<string:code>")
@staff_only("admin")
@blp.arguments(NudgeRuleUpdateArgs)
@blp.response(200, NudgeRuleSchema)
def update_rule(args, code: str):
    """Change timing, channels, repeats or switch a rule off (pending nudges check `active`)."""
    return operations.update_rule(code, args, current_actor())

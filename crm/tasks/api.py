"""Task endpoints: the coordinator's queue, "due today" in their own time zone, overdue."""

from __future__ import annotations

from crm.auth.guards import caller_scope, current_actor, staff_only
from crm.core.blueprint import Blueprint
from crm.core.idempotency import idempotent
from crm.referrals.queries import referral_for
from crm.tasks import operations, queries
from crm.tasks.schemas import (
    TaskCreateArgs,
    TaskListArgs,
    TaskPageSchema,
    TaskSchema,
    TaskUpdateArgs,
)

blp = Blueprint("tasks", __name__, description="Coordinator tasks")


@blp.get("/tasks")
@staff_only("coordinator", "manager")
@blp.arguments(TaskListArgs, location="query")
@blp.response(200, TaskPageSchema)
def list_tasks(args):
    """Open tasks, urgent first: yours, the unassigned queue or all; due today or overdue."""
    return queries.list_tasks(current_actor(), args)


@blp.post("/tasks")
@idempotent(caller_scope)
@staff_only("coordinator", "manager")
@blp.arguments(TaskCreateArgs)
@blp.response(201, TaskSchema)
def create_task(args):
    """A manual task on a referral."""
    referral = referral_for(current_actor(), args["referral_id"])
    task = operations.create_task(referral, args, current_actor())
    return queries.view(current_actor(), task)


@blp.patch("/tasks/<int:task_id>")
@staff_only("coordinator", "manager")
@blp.arguments(TaskUpdateArgs)
@blp.response(200, TaskSchema)
def update_task(args, task_id: int):
    """Mark done or cancelled (or reopen), change the owner, the due time or the priority."""
    task = queries.task_for(current_actor(), task_id, for_update=True)
    return queries.view(current_actor(), operations.update_task(task, args, current_actor()))

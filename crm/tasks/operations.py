"""Creating coordinator tasks. A dedupe key makes a task once per cause."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from crm.auth.models import StaffUser
from crm.core import audit
from crm.core.actors import Actor
from crm.core.db import utcnow
from crm.core.errors import ValidationFailed
from crm.extensions import db
from crm.referrals.models import Referral
from crm.tasks.models import Task


def open_task(
    referral: Referral | None,
    title: str,
    source: str,
    *,
    detail: str = "",
    priority: str = "normal",
    due_at: datetime | None = None,
    dedupe_key: str | None = None,
) -> Task:
    """A task for the referral's owner (unassigned tasks show in the shared queue)."""
    if dedupe_key:
        existing = db.session.scalar(select(Task).where(Task.dedupe_key == dedupe_key))
        if existing is not None:
            return existing
    task = Task(
        referral_id=referral.id if referral else None,
        owner_id=referral.owner_id if referral else None,
        title=title,
        detail=detail,
        source=source,
        priority=priority,
        due_at=due_at or utcnow(),
        dedupe_key=dedupe_key,
    )
    db.session.add(task)
    db.session.flush()
    return task


OWNER_ROLES = frozenset({"coordinator", "manager", "admin"})


def _check_owner(owner_id: int | None) -> None:
    if owner_id is None:
        return
    owner = db.session.get(StaffUser, owner_id)
    if owner is None or not owner.active:
        raise ValidationFailed({"owner_id": "no active staff user with this id"})
    if owner.role not in OWNER_ROLES:
        raise ValidationFailed({"owner_id": f"a {owner.role} cannot own tasks"})


def create_task(referral: Referral, data: dict[str, Any], actor: Actor) -> Task:
    """A manual task on a referral, for the given owner or the referral's."""
    _check_owner(data.get("owner_id"))
    task = open_task(
        referral,
        data["title"],
        "manual",
        detail=data.get("detail", ""),
        priority=data.get("priority", "normal"),
        due_at=data.get("due_at"),
    )
    if data.get("owner_id") is not None:
        task.owner_id = data["owner_id"]
    db.session.flush()
    audit.record(actor, "task.create", referral.id, task_id=task.id)
    return task


def update_task(task: Task, data: dict[str, Any], actor: Actor) -> Task:
    """Close (done, cancelled) or reopen a task, hand it over, move its due time."""
    if "owner_id" in data:
        _check_owner(data["owner_id"])
        task.owner_id = data["owner_id"]
    if "due_at" in data:
        task.due_at = data["due_at"]
    if "priority" in data:
        task.priority = data["priority"]
    if "status" in data and data["status"] != task.status:
        task.status = data["status"]
        task.completed_at = None if task.status == "open" else utcnow()
    db.session.flush()
    audit.record(actor, "task.update", task.referral_id, task_id=task.id, changed=sorted(data))
    return task


def close_open_tasks(referral_id: int, source: str, actor: Actor) -> list[Task]:
    """Mark done every open task of this source on the referral (an answer to the patient
    deals with the replies that raised them)."""
    found = list(
        db.session.scalars(
            select(Task).where(
                Task.referral_id == referral_id, Task.source == source, Task.status == "open"
            )
        )
    )
    for task in found:
        update_task(task, {"status": "done"}, actor)
    return found


def close_keyed_task(dedupe_key: str, actor: Actor) -> Task | None:
    """Mark done the open task made for this cause (its dedupe key), if there is one."""
    task = db.session.scalar(
        select(Task).where(Task.dedupe_key == dedupe_key, Task.status == "open")
    )
    if task is not None:
        update_task(task, {"status": "done"}, actor)
    return task

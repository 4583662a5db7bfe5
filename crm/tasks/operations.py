"""Creating coordinator tasks. A dedupe key makes a task once per cause."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from crm.core.db import utcnow
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

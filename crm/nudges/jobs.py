"""The nudge sweep, run by the scheduler: it commits per batch, nothing else does."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select, update

from crm.core.db import utcnow
from crm.extensions import db
from crm.nudges.models import ScheduledNudge
from crm.nudges.operations import fire

log = logging.getLogger(__name__)


def _fire_isolated(nudge: ScheduledNudge, now: datetime) -> None:
    """One nudge that cannot be written (bad data) is cancelled and logged; the rest go."""
    nudge_id = nudge.id
    try:
        with db.session.begin_nested():
            fire(nudge, now)
    except Exception:
        log.exception("nudge %s could not be fired; cancelled", nudge_id)
        db.session.execute(
            update(ScheduledNudge)
            .where(ScheduledNudge.id == nudge_id)
            .values(status="cancelled", finished_at=now)
        )


def sweep(now: datetime | None = None, batch_size: int = 200) -> int:
    """Fire every due nudge; commits per batch. Safe with several sweepers at once."""
    now = now or utcnow()
    fired = 0
    while True:
        due = (
            select(ScheduledNudge)
            .where(ScheduledNudge.status == "pending", ScheduledNudge.due_at <= now)
            .order_by(ScheduledNudge.due_at, ScheduledNudge.id)
            .limit(batch_size)
        )
        if db.session.get_bind().dialect.name == "postgresql":
            due = due.with_for_update(skip_locked=True, of=ScheduledNudge)
        batch = list(db.session.scalars(due).unique())
        for nudge in batch:
            _fire_isolated(nudge, now)
        db.session.commit()
        fired += len(batch)
        if len(batch) < batch_size:
            return fired

"""Reading tasks, for staff. "Today" is the caller's own day, in their time zone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import case, select

from crm.auth.models import StaffUser
from crm.core import audit
from crm.core.actors import Actor
from crm.core.db import utcnow
from crm.core.errors import NotFound
from crm.extensions import db
from crm.patients.models import Patient
from crm.referrals.models import Referral
from crm.referrals.queries import MAX_ROW_ID
from crm.referrals.references import hospital_reference
from crm.tasks.models import Task


def zone_of(actor: Actor) -> ZoneInfo:
    user = db.session.get(StaffUser, actor.id) if actor.id is not None else None
    try:
        return ZoneInfo(user.time_zone if user else "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def day_bounds(now: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) of the local day containing `now`, in UTC (23 or 25 hours on DST days)."""
    today = now.astimezone(tz).date()
    start = datetime.combine(today, time.min, tzinfo=tz)
    end = datetime.combine(today + timedelta(days=1), time.min, tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)


@dataclass
class TaskView:
    task: Task
    tz: ZoneInfo
    now: datetime

    def __getattr__(self, name: str) -> Any:
        return getattr(self.task, name)

    @property
    def due_at_local(self) -> str:
        return self.task.due_at.astimezone(self.tz).isoformat()

    @property
    def overdue(self) -> bool:
        return self.task.status == "open" and self.task.due_at < self.now


@dataclass
class TaskPage:
    time_zone: str
    items: list[TaskView]


def view(actor: Actor, task: Task, now: datetime | None = None) -> TaskView:
    return TaskView(task, zone_of(actor), now or utcnow())


def task_for(actor: Actor, task_id: int, *, for_update: bool = False) -> Task:
    if not actor.is_staff or not 0 < task_id <= MAX_ROW_ID:
        raise NotFound(f"no task {task_id}")
    statement = select(Task).where(Task.id == task_id)
    if for_update:
        statement = statement.with_for_update()
    task = db.session.scalar(statement)
    if task is None:
        raise NotFound(f"no task {task_id}")
    return task


def tasks_of(referral_id: int) -> list[Task]:
    """Every task of one referral, open or closed, oldest first (its page's timeline)."""
    return list(
        db.session.scalars(
            select(Task).where(Task.referral_id == referral_id).order_by(Task.created_at, Task.id)
        )
    )


def list_tasks(actor: Actor, args: dict[str, Any], now: datetime | None = None) -> TaskPage:
    """Open tasks, urgent first, then by due time."""
    now = now or utcnow()
    tz = zone_of(actor)
    statement = select(Task).where(Task.status == "open")
    if args["view"] == "mine":
        statement = statement.where(Task.owner_id == actor.id)
    elif args["view"] == "unassigned":
        statement = statement.where(Task.owner_id.is_(None))
    if args["due"] == "today":
        start, end = day_bounds(now, tz)
        statement = statement.where(Task.due_at >= start, Task.due_at < end)
    elif args["due"] == "overdue":
        statement = statement.where(Task.due_at < now)
    if args.get("referral_id") is not None:
        statement = statement.where(Task.referral_id == args["referral_id"])
    urgent_first = case((Task.priority == "urgent", 0), else_=1)
    statement = statement.order_by(urgent_first, Task.due_at, Task.id).limit(args["limit"])
    tasks = db.session.scalars(statement).all()
    if tasks:  # a task's text can carry health detail (a pain score): its read is audited
        audit.record(
            actor,
            "task.list",
            None,
            task_ids=[task.id for task in tasks],
            referral_ids=sorted({task.referral_id for task in tasks}),
        )
    return TaskPage(tz.key, [TaskView(task, tz, now) for task in tasks])


def urgent_alerts_closed(referral: Referral) -> dict[str, Any]:
    """The fact behind the guard `no_open_urgent_alert`: no urgent task from a check-in
    alert is still open on the referral."""
    open_alert = db.session.scalar(
        select(Task.id)
        .where(
            Task.referral_id == referral.id,
            Task.source == "alert",
            Task.priority == "urgent",
            Task.status == "open",
        )
        .limit(1)
    )
    return {"urgent_alerts_closed": open_alert is None}


def urgent_alerts(limit: int = 50) -> list[Task]:
    """Open urgent tasks raised by check-in alerts, oldest first: the calls to make now."""
    return list(
        db.session.scalars(
            select(Task)
            .where(Task.source == "alert", Task.priority == "urgent", Task.status == "open")
            .order_by(Task.created_at, Task.id)
            .limit(limit)
        )
    )


@dataclass(frozen=True)
class ReferralLabel:
    reference: str
    patient: str
    time_zone: str


def referral_labels(referral_ids: set[int | None]) -> dict[int, ReferralLabel]:
    """Reference, patient's name and zone of each referral the tasks are about, in one read
    (a list of tasks names its patients without a query per task)."""
    ids = sorted(i for i in referral_ids if i is not None)
    if not ids:
        return {}
    rows = db.session.execute(
        select(Referral.id, Patient.given_name, Patient.family_name, Patient.time_zone)
        .join(Patient, Patient.id == Referral.patient_id)
        .where(Referral.id.in_(ids))
    )
    return {
        rid: ReferralLabel(hospital_reference(rid), f"{given} {family}", zone)
        for rid, given, family, zone in rows
    }


def open_task_of(referral_id: int, source: str, title: str) -> Task | None:
    """The open task of this source and title on the referral, if any."""
    return db.session.scalar(
        select(Task)
        .where(
            Task.referral_id == referral_id,
            Task.source == source,
            Task.title == title,
            Task.status == "open",
        )
        .limit(1)
    )


@dataclass(frozen=True)
class CardMarkers:
    """What a referral's open tasks say on the board: whether an urgent check-in alert is
    open (the fact behind `no_open_urgent_alert`). Unread messages are the conversation's
    own count (`crm.conversation.queries.unread_counts`), not tasks."""

    urgent_alert: bool = False


def card_markers(referral_ids: list[int]) -> dict[int, CardMarkers]:
    """The markers of the given referrals in one grouped query (absent: none)."""
    if not referral_ids:
        return {}
    statement = (
        select(Task.referral_id)
        .where(
            Task.referral_id.in_(referral_ids),
            Task.status == "open",
            Task.source == "alert",
            Task.priority == "urgent",
        )
        .group_by(Task.referral_id)
    )
    return {referral_id: CardMarkers(True) for referral_id in db.session.scalars(statement)}

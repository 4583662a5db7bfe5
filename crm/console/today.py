"""Today: what the signed-in person must do now, each section by what their role may see.

My tasks (overdue, then due today in the viewer's own day), the unassigned queue and the
urgent alerts (roles that handle tasks, as GET /api/v1/tasks), the specialist's review
queue with its SLA (as GET /api/v1/reviews/queue), and the week's arrivals, admissions,
discharges and departures (any staff). Each section is one or two bounded reads; the page
names patients, so one audit row records whose.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from flask import flash, redirect, render_template, request, url_for

from crm.auth.guards import current_actor, role_allows
from crm.console.actions import attempt
from crm.console.auth import staff_page
from crm.console.views import console
from crm.conversation.queries import unread_summary
from crm.core import audit
from crm.core.db import utcnow
from crm.reviews.queries import review_queue
from crm.tasks import operations as task_operations
from crm.tasks import queries as tasks
from crm.travel.queries import week_calendar

TASK_ROLES = ("coordinator", "manager")  # GET and PATCH /api/v1/tasks
REVIEW_ROLES = ("specialist", "coordinator", "manager")  # GET /api/v1/reviews/queue
OUTBOX_ROLES = ("coordinator", "manager")  # the outbox page (an admin always)
LIMIT = 50


@console.get("/today")
@staff_page()
def today():
    actor, now = current_actor(), utcnow()
    tz = tasks.zone_of(actor)
    monday = _week_start(request.args.get("week"), now.astimezone(tz).date())
    context: dict = {"now": now, "tz": tz, "monday": monday, "shows_outbox": False}
    if role_allows(actor, TASK_ROLES):
        alerts = tasks.urgent_alerts(LIMIT)
        alert_ids = {alert.id for alert in alerts}  # shown once, in their own section

        def listed(view: str, due: str) -> list:
            found = tasks.list_tasks(actor, _args(view, due), now).items
            return [task for task in found if task.id not in alert_ids]

        overdue = listed("mine", "overdue")
        context.update(
            alerts=alerts,
            overdue=overdue,
            due_today=[task for task in listed("mine", "today") if not task.overdue],
            unassigned=listed("unassigned", "open"),
            shows_outbox=role_allows(actor, OUTBOX_ROLES),
            unread=unread_summary(),
        )
        shown = [*alerts, *overdue, *context["due_today"], *context["unassigned"]]
        context["labels"] = tasks.referral_labels({t.referral_id for t in shown})
    if role_allows(actor, REVIEW_ROLES):
        context["queue"] = review_queue(LIMIT)
    context["days"] = week_calendar(monday, tz)
    _audit(actor, context)
    return render_template(
        "console/today.html",
        **context,
        previous_week=monday - timedelta(days=7),
        next_week=monday + timedelta(days=7),
        this_week=_week_start(None, now.astimezone(tz).date()),
    )


@console.post("/today/tasks/<int:task_id>/done")
@staff_page(*TASK_ROLES)
def task_done(task_id: int):
    """The "done" button: the same operation as PATCH /api/v1/tasks/<id> {"status": "done"}."""
    actor = current_actor()
    attempt(
        lambda: task_operations.update_task(
            tasks.task_for(actor, task_id, for_update=True), {"status": "done"}, actor
        ),
        done="Task marked done.",
    )
    return redirect(url_for("console.today", week=request.form.get("week") or None), 303)


def _args(view: str, due: str) -> dict:
    return {"view": view, "due": due, "limit": LIMIT}


def _week_start(text: str | None, today: date) -> date:
    """The Monday of the week `?week=` names (any day of it), else of today's week."""
    day = today
    if text:
        try:
            day = date.fromisoformat(text[:10])
        except ValueError:
            flash("That week is not a date (YYYY-MM-DD); showing this week.", "error")
        if not date(2000, 1, 1) <= day <= date(2100, 12, 31):
            day = today
    return day - timedelta(days=day.weekday())


def _audit(actor, context: dict) -> None:
    sections = ("overdue", "due_today", "unassigned", "alerts")
    ids = {task.referral_id for key in sections for task in context.get(key, ())}
    ids |= {item["referral_id"] for item in context.get("queue", ())}
    if "unread" in context:
        ids |= {item.referral_id for item in context["unread"].referrals}
    ids |= {event.referral_id for day in context["days"] for event in day.events}
    ids.discard(None)
    if ids:
        audit.record(actor, "console.today", None, referral_ids=sorted(ids))


@console.app_template_filter("hour_minute")
def _hour_minute(value: datetime, zone: ZoneInfo | str) -> str:
    """`14:05` in `zone` (the viewer's ZoneInfo or a zone's name)."""
    tz = zone if isinstance(zone, ZoneInfo) else ZoneInfo(zone)
    return value.astimezone(tz).strftime("%H:%M")

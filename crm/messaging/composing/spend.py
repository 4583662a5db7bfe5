"""The SMS spend caps, read from counters rather than counted from the outbox.

Each SMS written for sending bumps two counters in one upsert: the global one for the
current UTC clock hour and its agency's for the current UTC day. The upsert takes the
counter rows' locks until the transaction ends, so two writers never both take the last
place under a cap (PostgreSQL; SQLite has one writer at a time). Over a cap, the bump is
taken back and the cap named: the message is held or refused, and a held message is not
counted again when its window comes.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import tuple_, update
from sqlalchemy.dialects import postgresql, sqlite

from crm.extensions import db
from crm.messaging.models import SmsSpendCounter

GLOBAL_HOURLY, AGENCY_DAILY = "global_hourly", "agency_daily"
WINDOWS = {GLOBAL_HOURLY: timedelta(hours=1), AGENCY_DAILY: timedelta(days=1)}


def _windows(agency_id: int | None, now: datetime) -> dict[str, tuple[str, datetime]]:
    """The counters one SMS counts against: cap name -> (scope, window start)."""
    hour = now.replace(minute=0, second=0, microsecond=0)
    windows = {GLOBAL_HOURLY: ("global", hour)}
    if agency_id is not None:
        windows[AGENCY_DAILY] = (f"agency:{agency_id}", hour.replace(hour=0))
    return windows


def _caps() -> dict[str, int]:
    settings = current_app.config["CRM"]
    return {
        GLOBAL_HOURLY: settings["SMS_CAP_GLOBAL_HOURLY"],
        AGENCY_DAILY: settings["SMS_CAP_AGENCY_DAILY"],
    }


def count_sms(agency_id: int | None, now: datetime) -> str | None:
    """Count one more SMS against its caps; the cap it would pass (and nothing counted),
    or None (counted)."""
    windows = _windows(agency_id, now)
    rows = sorted(windows.values())  # one lock order for every writer
    table = SmsSpendCounter.__table__
    make = (
        postgresql.insert if db.session.get_bind().dialect.name == "postgresql" else sqlite.insert
    )
    statement = make(table).values([{"scope": s, "window_start": w, "sent": 1} for s, w in rows])
    statement = statement.on_conflict_do_update(
        index_elements=["scope", "window_start"], set_={"sent": table.c.sent + 1}
    ).returning(table.c.scope, table.c.sent)
    sent = dict(db.session.execute(statement).all())
    caps = _caps()
    passed = next((cap for cap, (scope, _) in windows.items() if sent[scope] > caps[cap]), None)
    if passed is not None:
        db.session.execute(
            update(SmsSpendCounter)
            .where(tuple_(SmsSpendCounter.scope, SmsSpendCounter.window_start).in_(rows))
            .values(sent=SmsSpendCounter.sent - 1)
        )
    return passed


def sms_counted(now: datetime, agency_id: int | None = None) -> int:
    """SMS counted in the window `now` falls in: the global hour's, or the agency's day's."""
    windows = _windows(agency_id, now)
    scope, start = windows[AGENCY_DAILY if agency_id is not None else GLOBAL_HOURLY]
    counter = db.session.get(SmsSpendCounter, (scope, start), populate_existing=True)
    return counter.sent if counter is not None else 0

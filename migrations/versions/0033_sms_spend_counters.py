"""sms_spend_counters: the SMS spend caps read a counter per window instead of counting
the outbox; seeded with the current hour's and day's SMS so a deploy mid-window keeps
the caps

Revision ID: 0033
Revises: 0030
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0033"
down_revision = "0030"
branch_labels = None
depends_on = None

_COUNTED = ("queued", "sending", "sent", "delivered", "undelivered")


def upgrade():
    op.create_table(
        "sms_spend_counters",
        sa.Column("scope", sa.String(length=40), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "window_start", name=op.f("pk_sms_spend_counters")),
    )
    _seed()


def _seed():
    """The current windows' SMS as the old count read them (UTC hour; UTC day per agency)."""
    bind = op.get_bind()
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    day = hour.replace(hour=0)
    sms = sa.table(
        "outbox_messages",
        sa.column("channel"),
        sa.column("status"),
        sa.column("agency_id"),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    counted = sa.and_(sms.c.channel == "sms", sms.c.status.in_(_COUNTED))
    rows = []
    global_sent = bind.execute(
        sa.select(sa.func.count()).where(counted, sms.c.created_at >= hour)
    ).scalar_one()
    if global_sent:
        rows.append({"scope": "global", "window_start": hour, "sent": global_sent})
    per_agency = bind.execute(
        sa.select(sms.c.agency_id, sa.func.count())
        .where(counted, sms.c.created_at >= day, sms.c.agency_id.is_not(None))
        .group_by(sms.c.agency_id)
    ).all()
    rows += [
        {"scope": f"agency:{agency_id}", "window_start": day, "sent": sent}
        for agency_id, sent in per_agency
    ]
    if rows:
        counters = sa.table(
            "sms_spend_counters",
            sa.column("scope"),
            sa.column("window_start", sa.DateTime(timezone=True)),
            sa.column("sent"),
        )
        op.bulk_insert(counters, rows)


def downgrade():
    op.drop_table("sms_spend_counters")

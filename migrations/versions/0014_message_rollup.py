"""messaging report rollup: outbox rows per day written, channel, status, reason, agency
and procedure, filled from the outbox as it stands

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

FILL = """
INSERT INTO report_message_daily (day, channel, status, reason, agency_id, procedure_code,
                                  messages, segments)
SELECT {day}, o.channel,
       CASE WHEN o.status = 'sending' THEN 'queued' ELSE o.status END,
       CASE WHEN o.status = 'suppressed' THEN COALESCE(o.suppressed_reason, '') ELSE '' END,
       COALESCE(o.agency_id, 0), COALESCE(p.code, ''), count(*), COALESCE(sum(o.segments), 0)
FROM outbox_messages o
LEFT JOIN referrals r ON r.id = o.referral_id
LEFT JOIN procedures p ON p.id = r.procedure_id
GROUP BY 1, 2, 3, 4, 5, 6
"""


def upgrade():
    op.create_table(
        "report_message_daily",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("reason", sa.String(length=100), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("procedure_code", sa.String(length=64), nullable=False),
        sa.Column("messages", sa.Integer(), nullable=False),
        sa.Column("segments", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "day",
            "channel",
            "status",
            "reason",
            "agency_id",
            "procedure_code",
            name="pk_report_message_daily",
        ),
    )
    postgres = op.get_bind().dialect.name == "postgresql"
    day = "(o.created_at AT TIME ZONE 'UTC')::date" if postgres else "date(o.created_at)"
    op.execute(FILL.format(day=day))


def downgrade():
    op.drop_table("report_message_daily")

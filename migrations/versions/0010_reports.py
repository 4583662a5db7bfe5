"""report rollups: stages reached per day, stage-visit duration histograms, accepted plans
per day and currency, opt-outs per day

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "report_stage_daily",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("stage", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("procedure_code", sa.String(length=64), nullable=False),
        sa.Column("entered", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "day", "stage", "reason", "agency_id", "procedure_code", name="pk_report_stage_daily"
        ),
    )
    op.create_table(
        "report_stage_duration",
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("stage", sa.String(length=20), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("procedure_code", sa.String(length=64), nullable=False),
        sa.Column("bucket", sa.Integer(), nullable=False),
        sa.Column("visits", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "month",
            "stage",
            "agency_id",
            "procedure_code",
            "bucket",
            name="pk_report_stage_duration",
        ),
    )
    op.create_table(
        "report_plan_daily",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("procedure_code", sa.String(length=64), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("accepted", sa.Integer(), nullable=False),
        sa.Column("value_minor", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "day", "agency_id", "procedure_code", "currency", name="pk_report_plan_daily"
        ),
    )
    op.create_table(
        "report_optout_daily",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("opt_outs", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", "channel", "agency_id", name="pk_report_optout_daily"),
    )


def downgrade():
    op.drop_table("report_optout_daily")
    op.drop_table("report_plan_daily")
    op.drop_table("report_stage_duration")
    op.drop_table("report_stage_daily")

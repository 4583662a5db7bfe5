"""SLA report: finished visits and breaches per month, stage, agency and procedure; the
index that lists finished breaches newest first (open ones use the board's
ix_referrals_stage_entered_at)

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "report_sla_monthly",
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("stage", sa.String(length=20), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("procedure_code", sa.String(length=64), nullable=False),
        sa.Column("visits", sa.Integer(), nullable=False),
        sa.Column("breached", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "month", "stage", "agency_id", "procedure_code", name="pk_report_sla_monthly"
        ),
    )
    op.create_index(
        "ix_stage_transitions_from_stage_occurred",
        "stage_transitions",
        ["from_stage", "occurred_at", "id"],
    )


def downgrade():
    op.drop_index("ix_stage_transitions_from_stage_occurred", table_name="stage_transitions")
    op.drop_table("report_sla_monthly")

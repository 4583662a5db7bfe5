"""SLA report: finished visits and breaches per month, stage, agency and procedure; the
indexes that list breaches newest first (finished: by the move out of the stage; open:
by the time the current stage was entered)

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
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
    op.create_index(
        "ix_referrals_stage_entered", "referrals", ["stage", "stage_entered_at", "id"]
    )


def downgrade():
    op.drop_index("ix_referrals_stage_entered", table_name="referrals")
    op.drop_index("ix_stage_transitions_from_stage_occurred", table_name="stage_transitions")
    op.drop_table("report_sla_monthly")

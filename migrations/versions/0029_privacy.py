"""privacy rights: legal holds on a patient (who, why, when, lifted) and the record of a
patient's erasure

Revision ID: 0029
Revises: 0028
"""

import sqlalchemy as sa
from alembic import op

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "legal_holds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("set_by_id", sa.Integer(), nullable=True),
        sa.Column("set_by_label", sa.String(length=200), nullable=False),
        sa.Column("lifted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lifted_by_id", sa.Integer(), nullable=True),
        sa.Column("lifted_by_label", sa.String(length=200), nullable=True),
        sa.Column("lift_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], ondelete="CASCADE",
            name=op.f("fk_legal_holds_patient_id_patients"),
        ),
        sa.ForeignKeyConstraint(
            ["set_by_id"], ["staff_users.id"], ondelete="SET NULL",
            name=op.f("fk_legal_holds_set_by_id_staff_users"),
        ),
        sa.ForeignKeyConstraint(
            ["lifted_by_id"], ["staff_users.id"], ondelete="SET NULL",
            name=op.f("fk_legal_holds_lifted_by_id_staff_users"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_legal_holds")),
    )
    op.create_index("ix_legal_holds_patient", "legal_holds", ["patient_id", "lifted_at"])
    op.create_table(
        "patient_erasures",
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=10), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("erased_by_label", sa.String(length=200), nullable=False),
        sa.Column("documents_removed", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "source IN ('request','retention')", name=op.f("ck_patient_erasures_source")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], ondelete="CASCADE",
            name=op.f("fk_patient_erasures_patient_id_patients"),
        ),
        sa.PrimaryKeyConstraint("patient_id", name=op.f("pk_patient_erasures")),
    )


def downgrade():
    op.drop_table("patient_erasures")
    op.drop_index("ix_legal_holds_patient", table_name="legal_holds")
    op.drop_table("legal_holds")

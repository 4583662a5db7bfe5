"""duplicate patients and attribution: matches with their evidence, the referral's
attributed agency, and the patient lookups by phone, email (case ignored) and birth date

Revision ID: 0021
Revises: 0020
"""

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "duplicate_matches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("referral_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("matched_patient_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("decided_by_label", sa.String(length=200), nullable=True),
        sa.CheckConstraint("kind IN ('exact','likely')", name=op.f("ck_duplicate_matches_kind")),
        sa.CheckConstraint(
            "status IN ('open','linked','dismissed')", name=op.f("ck_duplicate_matches_status")
        ),
        sa.CheckConstraint(
            "patient_id <> matched_patient_id", name=op.f("ck_duplicate_matches_not_self")
        ),
        sa.ForeignKeyConstraint(
            ["referral_id"], ["referrals.id"], ondelete="CASCADE",
            name=op.f("fk_duplicate_matches_referral_id_referrals"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], ondelete="CASCADE",
            name=op.f("fk_duplicate_matches_patient_id_patients"),
        ),
        sa.ForeignKeyConstraint(
            ["matched_patient_id"], ["patients.id"], ondelete="CASCADE",
            name=op.f("fk_duplicate_matches_matched_patient_id_patients"),
        ),
        sa.ForeignKeyConstraint(
            ["decided_by_id"], ["staff_users.id"], ondelete="SET NULL",
            name=op.f("fk_duplicate_matches_decided_by_id_staff_users"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_duplicate_matches")),
        sa.UniqueConstraint(
            "patient_id", "matched_patient_id",
            name=op.f("uq_duplicate_matches_patient_id_matched_patient_id"),
        ),
    )
    op.create_index(
        "ix_duplicate_matches_status_created", "duplicate_matches", ["status", "created_at", "id"]
    )
    op.create_index(
        op.f("ix_duplicate_matches_referral_id"), "duplicate_matches", ["referral_id"]
    )
    op.create_index(
        op.f("ix_duplicate_matches_matched_patient_id"), "duplicate_matches", ["matched_patient_id"]
    )
    op.create_index("ix_patients_phone", "patients", ["phone"])
    if op.get_bind().dialect.name == "postgresql":
        # SQLAlchemy cannot reflect an expression index on SQLite (it warns, and every
        # later batch migration reflects `patients`): there the email lookup scans.
        op.create_index("ix_patients_email_folded", "patients", [sa.text("lower(email)")])
    op.create_index("ix_patients_date_of_birth", "patients", ["date_of_birth"])
    with op.batch_alter_table("referrals") as batch:
        batch.add_column(sa.Column("attributed_agency_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_referrals_attributed_agency_id_agencies"),
            "agencies",
            ["attributed_agency_id"],
            ["id"],
            ondelete="RESTRICT",
        )


def downgrade():
    with op.batch_alter_table("referrals") as batch:
        batch.drop_constraint(
            op.f("fk_referrals_attributed_agency_id_agencies"), type_="foreignkey"
        )
        batch.drop_column("attributed_agency_id")
    op.drop_index("ix_patients_date_of_birth", table_name="patients")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_patients_email_folded", table_name="patients")
    op.drop_index("ix_patients_phone", table_name="patients")
    op.drop_table("duplicate_matches")

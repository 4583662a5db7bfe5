"""patient merges: a merged duplicate stays as a tombstone pointing at the surviving
patient (`patients.merged_into_id`, `merged_at`); a duplicate match may be `merged`

Revision ID: 0030
Revises: 0029
"""

import sqlalchemy as sa
from alembic import op

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("patients") as batch:
        batch.add_column(sa.Column("merged_into_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("merged_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_foreign_key(
            op.f("fk_patients_merged_into_id_patients"),
            "patients",
            ["merged_into_id"],
            ["id"],
            ondelete="RESTRICT",
        )
        batch.create_check_constraint(
            op.f("ck_patients_not_merged_into_self"),
            "merged_into_id IS NULL OR merged_into_id <> id",
        )
        batch.create_check_constraint(
            op.f("ck_patients_merged_at"), "(merged_into_id IS NULL) = (merged_at IS NULL)"
        )
        batch.create_index(op.f("ix_patients_merged_into_id"), ["merged_into_id"])
    with op.batch_alter_table("duplicate_matches") as batch:
        batch.drop_constraint(op.f("ck_duplicate_matches_status"), type_="check")
        batch.create_check_constraint(
            op.f("ck_duplicate_matches_status"),
            "status IN ('open','linked','dismissed','merged')",
        )


def downgrade():
    # A merge cannot be undone by a schema change: refuse while any happened, rather than
    # leave tombstones no code knows to skip.
    bind = op.get_bind()
    if bind.execute(sa.text("SELECT count(*) FROM patients WHERE merged_into_id IS NOT NULL")).scalar():
        raise RuntimeError("patients were merged: cannot downgrade below 0030")
    with op.batch_alter_table("duplicate_matches") as batch:
        batch.drop_constraint(op.f("ck_duplicate_matches_status"), type_="check")
        batch.create_check_constraint(
            op.f("ck_duplicate_matches_status"), "status IN ('open','linked','dismissed')"
        )
    with op.batch_alter_table("patients") as batch:
        batch.drop_index(op.f("ix_patients_merged_into_id"))
        batch.drop_constraint(op.f("ck_patients_merged_at"), type_="check")
        batch.drop_constraint(op.f("ck_patients_not_merged_into_self"), type_="check")
        batch.drop_constraint(op.f("fk_patients_merged_into_id_patients"), type_="foreignkey")
        batch.drop_column("merged_at")
        batch.drop_column("merged_into_id")

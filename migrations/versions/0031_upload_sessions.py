"""resumable uploads: one row per upload in progress (tus), swept once expired

Revision ID: 0031
Revises: 0034
"""

import sqlalchemy as sa
from alembic import op

revision = "0031"
down_revision = "0034"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "upload_sessions",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("referral_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("length", sa.BigInteger(), nullable=False),
        sa.Column("received", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("refusal", sa.Text(), nullable=True),
        sa.Column("document_id", sa.Integer(), nullable=True),
        sa.Column("owner_type", sa.String(length=10), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column("owner_label", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('mri_study','radiology_report','passport','medical_record','other')",
            name=op.f("ck_upload_sessions_kind"),
        ),
        sa.CheckConstraint(
            "status IN ('open','complete','refused')", name=op.f("ck_upload_sessions_status")
        ),
        sa.CheckConstraint(
            "owner_type IN ('agency','staff','patient')", name=op.f("ck_upload_sessions_owner")
        ),
        sa.CheckConstraint(
            "length > 0 AND received >= 0 AND received <= length",
            name=op.f("ck_upload_sessions_sizes"),
        ),
        sa.ForeignKeyConstraint(
            ["referral_id"], ["referrals.id"], ondelete="CASCADE",
            name=op.f("fk_upload_sessions_referral_id_referrals"),
        ),
        sa.ForeignKeyConstraint(
            ["document_id"], ["documents.id"], ondelete="SET NULL",
            name=op.f("fk_upload_sessions_document_id_documents"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_upload_sessions")),
    )  # fmt: skip
    op.create_index("ix_upload_sessions_expires", "upload_sessions", ["status", "expires_at"])


def downgrade():
    op.drop_index("ix_upload_sessions_expires", table_name="upload_sessions")
    op.drop_table("upload_sessions")

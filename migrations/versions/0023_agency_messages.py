"""agency messages: the thread between a referral's agency and the coordinators

Revision ID: 0023
Revises: 0022
"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "agency_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("referral_id", sa.Integer(), nullable=False),
        sa.Column("direction", sa.String(length=12), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("author_type", sa.String(length=10), nullable=False),
        sa.Column("author_label", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "direction IN ('to_agency','from_agency')", name=op.f("ck_agency_messages_direction")
        ),
        sa.CheckConstraint(
            "author_type IN ('staff','agency')", name=op.f("ck_agency_messages_author_type")
        ),
        sa.ForeignKeyConstraint(
            ["referral_id"],
            ["referrals.id"],
            ondelete="CASCADE",
            name=op.f("fk_agency_messages_referral_id_referrals"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agency_messages")),
    )
    op.create_index("ix_agency_messages_referral", "agency_messages", ["referral_id", "created_at"])


def downgrade():
    op.drop_index("ix_agency_messages_referral", table_name="agency_messages")
    op.drop_table("agency_messages")

"""short links for SMS: a hashed code per message standing for the patient's private link

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "patient_short_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("link_id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("message_key", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["link_id"],
            ["patient_links.id"],
            name=op.f("fk_patient_short_links_link_id_patient_links"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patient_short_links")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_patient_short_links_code_hash")),
        sa.UniqueConstraint("message_key", name=op.f("uq_patient_short_links_message_key")),
    )
    with op.batch_alter_table("patient_short_links", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_patient_short_links_link_id"), ["link_id"], unique=False
        )


def downgrade():
    with op.batch_alter_table("patient_short_links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_patient_short_links_link_id"))
    op.drop_table("patient_short_links")

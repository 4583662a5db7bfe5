"""template overrides: admins' edits of message templates

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "template_overrides",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("language", sa.String(length=16), nullable=False),
        sa.Column("field", sa.String(length=10), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("updated_by_label", sa.String(length=200), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "field IN ('sms','subject','text','html')", name=op.f("ck_template_overrides_field")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_template_overrides")),
        sa.UniqueConstraint(
            "kind", "language", "field", name=op.f("uq_template_overrides_kind_language_field")
        ),
    )
    with op.batch_alter_table("template_overrides", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_template_overrides_kind"), ["kind"], unique=False)


def downgrade():
    with op.batch_alter_table("template_overrides", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_template_overrides_kind"))
    op.drop_table("template_overrides")

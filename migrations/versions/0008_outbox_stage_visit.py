"""outbox rows remember the stage visit they were written for

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("stage", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("stage_entered_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("stands", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade():
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.drop_column("stands")
        batch_op.drop_column("stage_entered_at")
        batch_op.drop_column("stage")

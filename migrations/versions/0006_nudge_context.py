"""scheduled nudges remember what their date's messages may say

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("scheduled_nudges") as batch:
        batch.add_column(sa.Column("context", sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table("scheduled_nudges") as batch:
        batch.drop_column("context")

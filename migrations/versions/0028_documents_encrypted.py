"""documents encrypted at rest: each row's wrapped data key and its master key's id

Revision ID: 0028
Revises: 0024
"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0028"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("documents") as batch:
        batch.add_column(sa.Column("key_id", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("wrapped_key", sa.LargeBinary(), nullable=True))
        batch.create_check_constraint("sealed", "(key_id IS NULL) = (wrapped_key IS NULL)")


def downgrade():
    with op.batch_alter_table("documents") as batch:
        batch.drop_constraint("sealed", type_="check")
        batch.drop_column("wrapped_key")
        batch.drop_column("key_id")

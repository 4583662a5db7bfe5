"""config_generation: one row whose token changes with every change to the catalogue,
the nudge rules or the template overrides, so each process knows when its caches of them
are stale (crm/core/cache.py)

Revision ID: 0034
Revises: 0033
"""

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0034"
down_revision = "0033"
branch_labels = None
depends_on = None


def upgrade():
    table = op.create_table(
        "config_generation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_config_generation")),
    )
    op.bulk_insert(table, [{"id": 1, "token": secrets.token_hex(16)}])


def downgrade():
    op.drop_table("config_generation")

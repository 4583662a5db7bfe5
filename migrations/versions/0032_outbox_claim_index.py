"""outbox_messages: the due index carries the claim's whole order (status, next_attempt_at,
id), so a dispatcher's claim reads the first rows of the index and stops at its batch
instead of sorting every due row by id (8.6 ms -> 0.1 ms for a claim of 50 out of 10,000
due on PostgreSQL). It replaces ix_outbox_due, a prefix of it that no query needs any more.

Revision ID: 0032
Revises: 0031

On PostgreSQL the index is built and the old one dropped CONCURRENTLY (outside the
migration's transaction, behind a lock timeout), so sending and enqueueing go on meanwhile;
code of the previous release runs unchanged against either index.
"""

from alembic import op

revision = "0032"
down_revision = "0031"
branch_labels = None
depends_on = None

NEW, OLD = "ix_outbox_claim", "ix_outbox_due"


def _swap(create: str, create_columns: list[str], drop: str) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        op.create_index(create, "outbox_messages", create_columns, unique=False)
        op.drop_index(drop, table_name="outbox_messages")
        return
    with op.get_context().autocommit_block():
        op.execute("SET lock_timeout = '5s'")
        # A build that failed half way leaves an invalid index of that name: start afresh.
        op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {create}")
        op.create_index(
            create, "outbox_messages", create_columns, unique=False, postgresql_concurrently=True
        )
        op.drop_index(
            drop, table_name="outbox_messages", postgresql_concurrently=True, if_exists=True
        )
        op.execute("RESET lock_timeout")


def upgrade():
    _swap(NEW, ["status", "next_attempt_at", "id"], OLD)


def downgrade():
    _swap(OLD, ["status", "next_attempt_at"], NEW)

"""WhatsApp: a third channel for messages and consent; which channel an inbound message
came by (the 24-hour session); a WhatsApp message's template values, the approved template
it went as, and its SMS fallback

Revision ID: 0017
Revises: 0016
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

THREE = "channel IN ('sms','email','whatsapp')"
TWO = "channel IN ('sms','email')"


def _replace_check(table: str, condition: str) -> None:
    with op.batch_alter_table(table, schema=None) as batch_op:
        batch_op.drop_constraint("channel", type_="check")
        batch_op.create_check_constraint("channel", condition)


def upgrade():
    _replace_check("outbox_messages", THREE)
    _replace_check("patient_consents", THREE)
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("template_values", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("content_sid", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("content_variables", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("fallback_channel", sa.String(length=8), nullable=True))
    with op.batch_alter_table("inbound_messages", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("channel", sa.String(length=10), server_default="sms", nullable=False)
        )
        batch_op.create_check_constraint("channel", "channel IN ('sms','whatsapp')")
        batch_op.create_index(
            "ix_inbound_session", ["channel", "from_address", "received_at"], unique=False
        )


def downgrade():
    op.execute("DELETE FROM outbox_messages WHERE channel = 'whatsapp'")
    op.execute("DELETE FROM patient_consents WHERE channel = 'whatsapp'")
    op.execute("DELETE FROM inbound_messages WHERE channel = 'whatsapp'")
    with op.batch_alter_table("inbound_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_inbound_session")
        batch_op.drop_constraint("channel", type_="check")
        batch_op.drop_column("channel")
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.drop_column("fallback_channel")
        batch_op.drop_column("content_variables")
        batch_op.drop_column("content_sid")
        batch_op.drop_column("template_values")
    _replace_check("patient_consents", TWO)
    _replace_check("outbox_messages", TWO)

"""the conversation: the patient's messages on the private page and the staff's answers,
and which inbound SMS and WhatsApp replies a coordinator has read

Revision ID: 0019
Revises: 0018
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

UNREAD = "direction = 'in' AND read_at IS NULL"


def upgrade():
    op.create_table(
        "conversation_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("referral_id", sa.Integer(), nullable=False),
        sa.Column("direction", sa.String(length=3), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("sms_carries_text", sa.Boolean(), nullable=False),
        sa.Column("outbox_message_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("read_by_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "direction IN ('in','out')", name=op.f("ck_conversation_messages_direction")
        ),
        sa.CheckConstraint(
            "channel IN ('page','sms','whatsapp','email')",
            name=op.f("ck_conversation_messages_channel"),
        ),
        sa.CheckConstraint(
            "direction = 'out' OR staff_id IS NULL",
            name=op.f("ck_conversation_messages_patient_writes_in"),
        ),
        sa.CheckConstraint(
            "direction = 'in' OR read_at IS NULL",
            name=op.f("ck_conversation_messages_only_inbound_is_read"),
        ),
        sa.ForeignKeyConstraint(
            ["referral_id"],
            ["referrals.id"],
            name=op.f("fk_conversation_messages_referral_id_referrals"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"],
            ["staff_users.id"],
            name=op.f("fk_conversation_messages_staff_id_staff_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["outbox_message_id"],
            ["outbox_messages.id"],
            name=op.f("fk_conversation_messages_outbox_message_id_outbox_messages"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["read_by_id"],
            ["staff_users.id"],
            name=op.f("fk_conversation_messages_read_by_id_staff_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversation_messages")),
    )
    with op.batch_alter_table("conversation_messages", schema=None) as batch_op:
        batch_op.create_index(
            "ix_conversation_referral", ["referral_id", "created_at"], unique=False
        )
        batch_op.create_index(
            "ix_conversation_unread",
            ["referral_id"],
            unique=False,
            postgresql_where=sa.text(UNREAD),
            sqlite_where=sa.text(UNREAD),
        )
    op.create_table(
        "conversation_reads",
        sa.Column("inbound_message_id", sa.Integer(), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("read_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["inbound_message_id"],
            ["inbound_messages.id"],
            name=op.f("fk_conversation_reads_inbound_message_id_inbound_messages"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["read_by_id"],
            ["staff_users.id"],
            name=op.f("fk_conversation_reads_read_by_id_staff_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("inbound_message_id", name=op.f("pk_conversation_reads")),
    )


def downgrade():
    op.drop_table("conversation_reads")
    with op.batch_alter_table("conversation_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_conversation_unread")
        batch_op.drop_index("ix_conversation_referral")
    op.drop_table("conversation_messages")

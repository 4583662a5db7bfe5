"""commission reversals: an entry's unique cause (instead of one entry per referral and
kind), the accrual a payable or reversal settles, refunds, and the cause on statement lines

Revision ID: 0024
Revises: 0023
"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("commission_entries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("accrual_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("cause", sa.String(length=120), nullable=True))
    # Before: at most one entry of each kind per referral, so each payable or reversed
    # entry settles the referral's one accrual.
    op.execute(
        "UPDATE commission_entries SET accrual_id = (SELECT a.id FROM commission_entries a"
        " WHERE a.referral_id = commission_entries.referral_id AND a.kind = 'accrued')"
        " WHERE kind <> 'accrued'"
    )
    op.execute(
        "UPDATE commission_entries SET cause = 'treatment:' || referral_id"
        " WHERE kind = 'accrued'"
    )
    op.execute(
        "UPDATE commission_entries SET cause = 'payable:' || accrual_id WHERE kind = 'payable'"
    )
    op.execute(
        "UPDATE commission_entries SET cause = 'cancelled:' || accrual_id"
        " WHERE kind = 'reversed'"
    )
    with op.batch_alter_table("commission_entries", schema=None) as batch_op:
        batch_op.alter_column("cause", existing_type=sa.String(length=120), nullable=False)
        batch_op.drop_constraint("uq_commission_entries_referral_id_kind", type_="unique")
        batch_op.create_unique_constraint(batch_op.f("uq_commission_entries_cause"), ["cause"])
        batch_op.create_check_constraint(
            batch_op.f("ck_commission_entries_accrual"), "(kind = 'accrued') = (accrual_id IS NULL)"
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_commission_entries_accrual_id_commission_entries"),
            "commission_entries",
            ["accrual_id"],
            ["id"],
            ondelete="RESTRICT",
        )
        batch_op.create_index(
            batch_op.f("ix_commission_entries_accrual_id"), ["accrual_id"], unique=False
        )
        batch_op.create_index("ix_commission_entries_referral_id", ["referral_id"], unique=False)

    with op.batch_alter_table("commission_statement_lines", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cause", sa.String(length=120), nullable=True))
    op.execute(
        "UPDATE commission_statement_lines SET cause = (SELECT e.cause FROM commission_entries e"
        " WHERE e.id = commission_statement_lines.entry_id)"
    )
    with op.batch_alter_table("commission_statement_lines", schema=None) as batch_op:
        batch_op.alter_column("cause", existing_type=sa.String(length=120), nullable=False)

    op.create_table(
        "commission_refunds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("referral_id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("recorded_by_label", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount_minor > 0", name=op.f("ck_commission_refunds_amount")),
        sa.CheckConstraint("length(currency) = 3", name=op.f("ck_commission_refunds_currency")),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["treatment_plans.id"],
            name=op.f("fk_commission_refunds_plan_id_treatment_plans"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["referral_id"],
            ["referrals.id"],
            name=op.f("fk_commission_refunds_referral_id_referrals"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_commission_refunds")),
    )
    with op.batch_alter_table("commission_refunds", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_commission_refunds_referral_id"), ["referral_id"], unique=False
        )


def downgrade():
    # Only a ledger that still has one entry per referral and kind goes back.
    with op.batch_alter_table("commission_refunds", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_commission_refunds_referral_id"))
    op.drop_table("commission_refunds")
    with op.batch_alter_table("commission_statement_lines", schema=None) as batch_op:
        batch_op.drop_column("cause")
    with op.batch_alter_table("commission_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_commission_entries_referral_id")
        batch_op.drop_index(batch_op.f("ix_commission_entries_accrual_id"))
        batch_op.drop_constraint(
            batch_op.f("fk_commission_entries_accrual_id_commission_entries"), type_="foreignkey"
        )
        batch_op.drop_constraint(batch_op.f("ck_commission_entries_accrual"), type_="check")
        batch_op.drop_constraint(batch_op.f("uq_commission_entries_cause"), type_="unique")
        batch_op.create_unique_constraint(
            "uq_commission_entries_referral_id_kind", ["referral_id", "kind"]
        )
        batch_op.drop_column("cause")
        batch_op.drop_column("accrual_id")

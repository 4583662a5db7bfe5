"""commission: contracts per agency, a ledger never edited (accrued, payable, reversed)
and the monthly statements frozen once issued

Revision ID: 0020
Revises: 0019
"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "commission_contracts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("basis_points", sa.Integer(), nullable=True),
        sa.Column("amount_minor", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("procedure_code", sa.String(length=64), nullable=True),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("effective_to", sa.Date(), nullable=True),
        sa.Column("created_by_label", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "(kind = 'percentage' AND basis_points BETWEEN 1 AND 10000 AND amount_minor IS NULL AND currency IS NULL) OR (kind = 'fixed' AND basis_points IS NULL AND amount_minor > 0 AND length(currency) = 3)",
            name=op.f("ck_commission_contracts_terms"),
        ),
        sa.CheckConstraint(
            "kind IN ('percentage','fixed')", name=op.f("ck_commission_contracts_kind")
        ),
        sa.CheckConstraint(
            "effective_to IS NULL OR effective_to >= effective_from",
            name=op.f("ck_commission_contracts_effective_dates"),
        ),
        sa.ForeignKeyConstraint(
            ["agency_id"],
            ["agencies.id"],
            name=op.f("fk_commission_contracts_agency_id_agencies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_commission_contracts")),
    )
    with op.batch_alter_table("commission_contracts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_commission_contracts_agency_id"), ["agency_id"], unique=False
        )

    op.create_table(
        "commission_statements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("issued_by_label", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"],
            ["agencies.id"],
            name=op.f("fk_commission_statements_agency_id_agencies"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_commission_statements")),
        sa.UniqueConstraint(
            "agency_id", "month", name=op.f("uq_commission_statements_agency_id_month")
        ),
    )
    op.create_table(
        "commission_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("referral_id", sa.Integer(), nullable=False),
        sa.Column("contract_id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "(kind = 'reversed' AND amount_minor <= 0) OR (kind <> 'reversed' AND amount_minor >= 0)",
            name=op.f("ck_commission_entries_sign"),
        ),
        sa.CheckConstraint(
            "kind IN ('accrued','payable','reversed')", name=op.f("ck_commission_entries_kind")
        ),
        sa.CheckConstraint("length(currency) = 3", name=op.f("ck_commission_entries_currency")),
        sa.ForeignKeyConstraint(
            ["agency_id"],
            ["agencies.id"],
            name=op.f("fk_commission_entries_agency_id_agencies"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["contract_id"],
            ["commission_contracts.id"],
            name=op.f("fk_commission_entries_contract_id_commission_contracts"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["treatment_plans.id"],
            name=op.f("fk_commission_entries_plan_id_treatment_plans"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["referral_id"],
            ["referrals.id"],
            name=op.f("fk_commission_entries_referral_id_referrals"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_commission_entries")),
        sa.UniqueConstraint(
            "referral_id", "kind", name=op.f("uq_commission_entries_referral_id_kind")
        ),
    )
    with op.batch_alter_table("commission_entries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_commission_entries_agency_id"), ["agency_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_commission_entries_period"), ["period"], unique=False)

    op.create_table(
        "commission_statement_lines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("statement_id", sa.Integer(), nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("referral_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("entry_created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["commission_entries.id"],
            name=op.f("fk_commission_statement_lines_entry_id_commission_entries"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["statement_id"],
            ["commission_statements.id"],
            name=op.f("fk_commission_statement_lines_statement_id_commission_statements"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_commission_statement_lines")),
        sa.UniqueConstraint(
            "statement_id",
            "entry_id",
            name=op.f("uq_commission_statement_lines_statement_id_entry_id"),
        ),
    )
    with op.batch_alter_table("commission_statement_lines", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_commission_statement_lines_statement_id"), ["statement_id"], unique=False
        )



def downgrade():
    with op.batch_alter_table("commission_statement_lines", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_commission_statement_lines_statement_id"))

    op.drop_table("commission_statement_lines")
    with op.batch_alter_table("commission_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_commission_entries_period"))
        batch_op.drop_index(batch_op.f("ix_commission_entries_agency_id"))

    op.drop_table("commission_entries")
    op.drop_table("commission_statements")
    with op.batch_alter_table("commission_contracts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_commission_contracts_agency_id"))

    op.drop_table("commission_contracts")

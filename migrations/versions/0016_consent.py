"""informed consent: patient information, checklist and pre-op instructions per language in
the catalogue; the consent's plan version, language and information text (and its hash)

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

_PER_LANGUAGE = ("patient_information", "pre_travel_checklist", "pre_operative_instructions")


def upgrade():
    with op.batch_alter_table("procedures", schema=None) as batch_op:
        for name in _PER_LANGUAGE:
            batch_op.add_column(sa.Column(name, sa.JSON(), nullable=False, server_default="{}"))
    if op.get_bind().dialect.name != "sqlite":  # SQLite would rebuild the referenced table
        with op.batch_alter_table("procedures", schema=None) as batch_op:
            for name in _PER_LANGUAGE:
                batch_op.alter_column(name, server_default=None)
    with op.batch_alter_table("treatment_plans", schema=None) as batch_op:
        batch_op.add_column(sa.Column("consent_plan_version", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("consent_language", sa.String(length=16), nullable=True))
        batch_op.add_column(
            sa.Column("consent_information_sha256", sa.String(length=64), nullable=True)
        )
        batch_op.add_column(sa.Column("consent_information_text", sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table("treatment_plans", schema=None) as batch_op:
        batch_op.drop_column("consent_information_text")
        batch_op.drop_column("consent_information_sha256")
        batch_op.drop_column("consent_language")
        batch_op.drop_column("consent_plan_version")
    with op.batch_alter_table("procedures", schema=None) as batch_op:
        for name in reversed(_PER_LANGUAGE):
            batch_op.drop_column(name)

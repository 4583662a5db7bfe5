"""check-in questions, alert rules and review fields come from the catalogue; answers and
review findings are stored keyed by the catalogue's codes

The check-in's answer columns (back pain ... fever) become one JSON object keyed by
question code, and the review's `disc_level` a key of `procedure_fields`: every answer
and finding stored before stays readable under the code it was asked by.

Revision ID: 0018
Revises: 0017
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

# The microdiscectomy questions the columns held, in the catalogue's order.
ANSWER_COLUMNS = {
    "back_pain": sa.Integer(),
    "leg_pain": sa.Integer(),
    "numbness": sa.Boolean(),
    "weakness": sa.Boolean(),
    "wound": sa.String(length=20),
    "bladder_or_bowel_trouble": sa.Boolean(),
    "saddle_numbness": sa.Boolean(),
    "fever": sa.Boolean(),
}
OLD_CHECKS = {
    "back_pain": "back_pain IS NULL OR back_pain BETWEEN 0 AND 10",
    "leg_pain": "leg_pain IS NULL OR leg_pain BETWEEN 0 AND 10",
    "wound": "wound IS NULL OR wound IN ('healing_well','red_or_swollen','discharge','opened')",
}


def _check_ins(*columns):
    return sa.table("check_ins", sa.column("id", sa.Integer()), *columns)


def upgrade():
    catalogue_columns = ("check_in_questions", "check_in_rules", "review_fields")
    with op.batch_alter_table("procedures", schema=None) as batch_op:
        for name in catalogue_columns:
            batch_op.add_column(sa.Column(name, sa.JSON(), nullable=False, server_default="[]"))
    # SQLite would rebuild `procedures` to drop the default, and referrals point at it
    if op.get_bind().dialect.name != "sqlite":
        with op.batch_alter_table("procedures", schema=None) as batch_op:
            for name in catalogue_columns:
                batch_op.alter_column(name, server_default=None)

    with op.batch_alter_table("check_ins", schema=None) as batch_op:
        batch_op.add_column(sa.Column("answers", sa.JSON(), nullable=True))
    bind = op.get_bind()
    old = _check_ins(*(sa.column(name, kind) for name, kind in ANSWER_COLUMNS.items()))
    new = _check_ins(sa.column("answers", sa.JSON()))
    for row in bind.execute(sa.select(old)).mappings().all():
        answers = {name: row[name] for name in ANSWER_COLUMNS if row[name] is not None}
        bind.execute(new.update().where(new.c.id == row["id"]).values(answers=answers))
    with op.batch_alter_table("check_ins", schema=None) as batch_op:
        batch_op.alter_column("answers", existing_type=sa.JSON(), nullable=False)
        for name in OLD_CHECKS:
            batch_op.drop_constraint(op.f(f"ck_check_ins_{name}"), type_="check")
        for name in ANSWER_COLUMNS:
            batch_op.drop_column(name)

    with op.batch_alter_table("reviews", schema=None) as batch_op:
        batch_op.add_column(sa.Column("procedure_fields", sa.JSON(), nullable=True))
    reviews = sa.table(
        "reviews",
        sa.column("id", sa.Integer()),
        sa.column("disc_level", sa.String()),
        sa.column("procedure_fields", sa.JSON()),
    )
    for row in bind.execute(sa.select(reviews.c.id, reviews.c.disc_level)).mappings().all():
        fields = {"disc_level": row["disc_level"]} if row["disc_level"] else {}
        bind.execute(
            reviews.update().where(reviews.c.id == row["id"]).values(procedure_fields=fields)
        )
    with op.batch_alter_table("reviews", schema=None) as batch_op:
        batch_op.alter_column("procedure_fields", existing_type=sa.JSON(), nullable=False)
        batch_op.drop_column("disc_level")


def downgrade():
    bind = op.get_bind()
    with op.batch_alter_table("reviews", schema=None) as batch_op:
        batch_op.add_column(sa.Column("disc_level", sa.String(length=20), nullable=True))
    reviews = sa.table(
        "reviews",
        sa.column("id", sa.Integer()),
        sa.column("disc_level", sa.String()),
        sa.column("procedure_fields", sa.JSON()),
    )
    for row in bind.execute(sa.select(reviews.c.id, reviews.c.procedure_fields)).mappings().all():
        level = (row["procedure_fields"] or {}).get("disc_level")
        bind.execute(reviews.update().where(reviews.c.id == row["id"]).values(disc_level=level))
    with op.batch_alter_table("reviews", schema=None) as batch_op:
        batch_op.drop_column("procedure_fields")

    with op.batch_alter_table("check_ins", schema=None) as batch_op:
        for name, kind in ANSWER_COLUMNS.items():
            batch_op.add_column(sa.Column(name, kind, nullable=True))
    old = _check_ins(*(sa.column(name, kind) for name, kind in ANSWER_COLUMNS.items()))
    new = _check_ins(sa.column("answers", sa.JSON()))
    for row in bind.execute(sa.select(new)).mappings().all():
        # Only what the old columns can hold: another procedure's answers are dropped.
        answers = row["answers"] or {}
        values = {name: answers[name] for name in ANSWER_COLUMNS if name in answers}
        if values:
            bind.execute(old.update().where(old.c.id == row["id"]).values(**values))
    with op.batch_alter_table("check_ins", schema=None) as batch_op:
        for name, condition in OLD_CHECKS.items():
            batch_op.create_check_constraint(op.f(f"ck_check_ins_{name}"), condition)
        batch_op.drop_column("answers")

    with op.batch_alter_table("procedures", schema=None) as batch_op:
        for name in ("check_in_questions", "check_in_rules", "review_fields"):
            batch_op.drop_column(name)

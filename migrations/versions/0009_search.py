"""referrals.search_text (trigram-indexed on PostgreSQL), an index on referrals.patient_id

Revision ID: 0009
Revises: 0008

The search text is backfilled here with a copy of the folding in crm/referrals/search.py
as it was when this revision was written (a migration never follows later code).
"""

import unicodedata

import phonenumbers
import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

BATCH = 5000
_LETTERS = str.maketrans(
    {"ø": "o", "ł": "l", "đ": "d", "ħ": "h", "\u0131": "i", "ŧ": "t", "æ": "ae", "œ": "oe"}
)


def _fold(text):
    folded = []
    for character in unicodedata.normalize("NFKC", text or "").casefold():
        decomposed = unicodedata.normalize("NFD", character)
        code = ord(decomposed[0])
        if code < 0x0530 or 0x1E00 <= code <= 0x1FFF:
            character = "".join(c for c in decomposed if not unicodedata.combining(c))
        folded.append(character)
    return "".join(folded).translate(_LETTERS)


def _digits(text):
    return "".join(c for c in text if c.isdigit())


def _phone_forms(phone):
    if not phone:
        return []
    forms = [_digits(phone)]
    try:
        number = phonenumbers.parse(phone)
    except phonenumbers.NumberParseException:
        return forms
    national = _digits(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL))
    return forms + ([national] if national and national not in forms else [])


def _search_text(given, family, email, phone, agency_reference):
    parts = [_fold(given), _fold(family), _fold(email), *_phone_forms(phone), _fold(agency_reference)]
    return " ".join(part for part in parts if part)


def _backfill(bind):
    rows = sa.text(
        "SELECT r.id, p.given_name, p.family_name, p.email, p.phone, r.agency_reference"
        " FROM referrals AS r JOIN patients AS p ON p.id = r.patient_id"
        " WHERE r.id > :after ORDER BY r.id LIMIT :batch"
    )
    write = sa.text("UPDATE referrals SET search_text = :text WHERE id = :id")
    after = 0
    while True:
        batch = bind.execute(rows, {"after": after, "batch": BATCH}).all()
        if not batch:
            return
        bind.execute(write, [{"id": row[0], "text": _search_text(*row[1:])} for row in batch])
        after = batch[-1][0]


def _has_pg_trgm(bind):
    available = "SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'"
    return bind.execute(sa.text(available)).first() is not None


def upgrade():
    bind = op.get_bind()
    with op.batch_alter_table("referrals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("search_text", sa.Text(), nullable=False, server_default=""))
        batch_op.create_index("ix_referrals_patient_id", ["patient_id"], unique=False)
    _backfill(bind)
    if bind.dialect.name == "postgresql" and _has_pg_trgm(bind):
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.create_index(
            "ix_referrals_search_text",
            "referrals",
            ["search_text"],
            postgresql_using="gin",
            postgresql_ops={"search_text": "gin_trgm_ops"},
        )
    else:  # SQLite (or a server without pg_trgm): a plain index, LIKE scans the table
        op.create_index("ix_referrals_search_text", "referrals", ["search_text"])


def downgrade():
    op.drop_index("ix_referrals_search_text", table_name="referrals")
    with op.batch_alter_table("referrals", schema=None) as batch_op:
        batch_op.drop_index("ix_referrals_patient_id")
        batch_op.drop_column("search_text")

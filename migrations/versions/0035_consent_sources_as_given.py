"""patient_consents.source: a source a caller gave that now reads as the patient's own act
is marked as given, so it cannot lift the patient's own withdrawal.

Revision ID: 0035
Revises: 0032

A withdrawal the patient made themselves (a STOP, the unsubscribe link, the carrier's
record of a STOP) is lifted only by the patient; which sources are the patient's own is
read from their wording (crm/patients/consent_sources.py), and since this release that
reading ignores case and punctuation and includes two new sources ("patient page",
"subscribed again"). A source an agency or a form stored before it ("Patient-Page",
"SMS-keyword ...") would now read as the patient's own; such a row is rewritten to
"as given: <source>". The sources the application itself wrote keep their exact forms and
are left alone. The rule is copied here as it stands in this release: a migration does not
import application code that may change after it.

Downgrade changes nothing: a rewritten source says truthfully that a caller gave it.
"""

import re

import sqlalchemy as sa
from alembic import op

revision = "0035"
down_revision = "0032"
branch_labels = None
depends_on = None

_PATIENTS_OWN = (
    "sms keyword",
    "whatsapp keyword",
    "unsubscribe link",
    "subscribed again",
    "carrier opt-out",
    "patient page",
)
_WRITTEN_BY_THE_APP = re.compile(
    r"(?:sms|whatsapp) keyword \(.*\)|unsubscribe link|carrier opt-out \(Twilio 21610\)"
)
_NOT_A_LETTER = re.compile(r"[\W_]+")
_MARK, _SOURCE_LENGTH = "as given: ", 100


def _words(text: str) -> str:
    return _NOT_A_LETTER.sub(" ", text.casefold()).strip()


_PREFIXES = tuple(_words(prefix) for prefix in _PATIENTS_OWN)


def given_by_a_caller(source: str) -> bool:
    """Worded like the patient's own, but not in a form the application writes."""
    return _words(source).startswith(_PREFIXES) and not _WRITTEN_BY_THE_APP.fullmatch(source)


def upgrade() -> None:
    bind = op.get_bind()
    # only rows naming one of the words can match: the rest of the table is not read
    hints = sa.or_(
        *(
            sa.func.lower(sa.column("source")).like(f"%{word}%")
            for word in ("sms", "whatsapp", "unsubscribe", "subscribed", "carrier", "patient")
        )
    )
    rows = bind.execute(
        sa.select(sa.column("id"), sa.column("source"))
        .select_from(sa.table("patient_consents"))
        .where(hints)
    ).all()
    for row_id, source in rows:
        if given_by_a_caller(source):
            bind.execute(
                sa.text("UPDATE patient_consents SET source = :source WHERE id = :id"),
                {"source": (_MARK + source)[:_SOURCE_LENGTH], "id": row_id},
            )


def downgrade() -> None:
    pass

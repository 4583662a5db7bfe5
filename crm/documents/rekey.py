"""Key rotation and legacy files: `flask crm documents rewrap` and `... encrypt-legacy`.

Rewrapping unwraps each document's data key with the master key it names and wraps it
under the active one: only the `documents` rows change, never the stored content, so it
is quick whatever the volume. Once it reports nothing left under an old key, that key
can be removed from CRM_DOCUMENTS_MASTER_KEYS. (A blob's header keeps the copy wrapped
when it was written; it is used only to recognise the blob's key on a later upload of the
same content, and is useless without the retired master key.)

Files stored before encryption at rest (rows with no key) stay readable as they are;
`encrypt-legacy` encrypts each such file in place under a new data key and records it on
every row of that content, one file per transaction.
"""

from __future__ import annotations

from sqlalchemy import select, update

from crm.documents.encryption import Sealed
from crm.documents.models import Document
from crm.documents.storage import current_storage
from crm.extensions import db

_BATCH = 500


def rewrap_all() -> int:
    """Every data key not under the active master key re-wrapped under it; returns how many
    rows changed. Commits per batch."""
    keyring, changed, last_id = current_storage().keyring, 0, 0
    while True:
        rows = db.session.scalars(
            select(Document)
            .where(Document.key_id.is_not(None), Document.key_id != keyring.active_id)
            .where(Document.id > last_id)
            .order_by(Document.id)
            .limit(_BATCH)
        ).all()
        if not rows:
            return changed
        for document in rows:
            document.key_id, document.wrapped_key = keyring.rewrap(document.sealed)
            changed += 1
        last_id = rows[-1].id
        db.session.commit()


def encrypt_legacy() -> int:
    """Every file stored in plaintext, encrypted in place; returns how many files."""
    store, done = current_storage(), 0
    while sha := db.session.scalar(
        select(Document.sha256).where(Document.key_id.is_(None)).order_by(Document.id).limit(1)
    ):
        sealed: Sealed = store.encrypt_in_place(sha)
        db.session.execute(
            update(Document)
            .where(Document.sha256 == sha)
            .values(key_id=sealed.key_id, wrapped_key=sealed.wrapped)
        )
        db.session.commit()
        done += 1
    return done

"""Per-process caches of configuration rows (the catalogue, the nudge rules, template
overrides), invalidated on every process when one of their tables changes.

Every change to a watched table, by the ORM or by a bulk statement, sets a new random
token in the one-row `config_generation` table in the same transaction. A cache keeps
its values with the token it read them under; each transaction reads the token once (one
short statement) and a cache whose token differs starts afresh. Other processes see the
new token when the change commits; a rolled-back change restores the old token, and since
tokens never repeat, nothing cached under the abandoned one is ever served.

Cached values are plain data. `attach` turns a cached row's column values back into an
instance of the caller's session without a query, so ORM code can use it as if it had
been loaded.
"""

from __future__ import annotations

import copy
import secrets
import threading
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from flask import current_app
from flask_sqlalchemy.session import Session as AppSession
from sqlalchemy import String, event, inspect, select, update
from sqlalchemy.orm import Mapped, Session, make_transient_to_detached, mapped_column

from crm.extensions import db

T = TypeVar("T")
M = TypeVar("M")

_SESSION_KEY = "crm.config_token"
_WATCHED: set[str] = set()
_NOTES = "crm.transaction_notes"
# transaction_notes(NEW_REFERRALS): the ids of the referrals this transaction created
NEW_REFERRALS = "new_referrals"


class ConfigGeneration(db.Model):
    """One row: the token of the configuration as it stands (see the module's notes)."""

    __tablename__ = "config_generation"

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(32))


def new_token() -> str:
    return secrets.token_hex(16)


def watch(*tables: str) -> None:
    """Changes to these tables invalidate every process's caches."""
    _WATCHED.update(tables)


def _current_token() -> str | None:
    info = db.session.info
    if _SESSION_KEY not in info:
        info[_SESSION_KEY] = db.session.scalar(
            select(ConfigGeneration.token).where(ConfigGeneration.id == 1)
        )
    return info[_SESSION_KEY]


def transaction_notes(name: str) -> set[Any]:
    """A set kept in the session for the current transaction only: what this transaction
    itself created, so a later step need not ask the database about it."""
    return db.session.info.setdefault(_NOTES, {}).setdefault(name, set())


def _bump(session: Session) -> None:
    session.connection().execute(
        update(ConfigGeneration).where(ConfigGeneration.id == 1).values(token=new_token())
    )
    session.info.pop(_SESSION_KEY, None)


class ProcessCache:
    """Values by key for one app, valid while the configuration token stays the same."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._token: str | None = None
        self._values: dict[Hashable, Any] = {}

    def get(self, key: Hashable, load: Callable[[], T]) -> T:
        token = _current_token()
        if token is None:  # a database without the row (before its migration)
            return load()
        with self._lock:
            if self._token != token:
                self._token, self._values = token, {}
            elif key in self._values:
                return self._values[key]
        value = load()
        with self._lock:
            if self._token == token:
                self._values[key] = value
        return value


def process_cache(name: str) -> ProcessCache:
    """The app's cache called `name` (each app its own: tests run several apps)."""
    caches = current_app.extensions.setdefault("crm.caches", {})
    with _CREATE_LOCK:
        return caches.setdefault(name, ProcessCache())


_CREATE_LOCK = threading.Lock()


def columns_of(instance: Any) -> dict[str, Any]:
    """A loaded row's column values, to cache and `attach` later."""
    mapper = inspect(instance).mapper
    return {attr.key: getattr(instance, attr.key) for attr in mapper.column_attrs}


def attach(model: type[M], values: dict[str, Any]) -> M:
    """The session's instance of this cached row: the one already in its identity map,
    or one made from the cached values as if just loaded (no query)."""
    session = db.session()
    mapper = inspect(model)
    identity = mapper.identity_key_from_primary_key(
        [values[column.key] for column in mapper.primary_key]
    )
    existing = session.identity_map.get(identity)
    if existing is not None:
        return existing
    # the JSON columns' lists and dicts are copied: an instance may change them in place
    mutable = (list, dict)
    instance = model(
        **{k: copy.deepcopy(v) if isinstance(v, mutable) else v for k, v in values.items()}
    )
    make_transient_to_detached(instance)
    session.add(instance)
    return instance


def _watched_tables_of(session: Session) -> bool:
    return any(
        inspect(instance).mapper.local_table.name in _WATCHED
        for instance in (*session.new, *session.dirty, *session.deleted)
    )


def _install(session_class: type[Session]) -> None:
    """Bump the token whenever a flush or a bulk statement changes a watched table, and
    forget the token read at the end of each transaction."""

    @event.listens_for(session_class, "before_flush")
    def _note_changes(session, _context, _instances):
        if _watched_tables_of(session):
            session.info["crm.config_dirty"] = True

    @event.listens_for(session_class, "after_flush_postexec")
    def _bump_after_flush(session, _context):
        if session.info.pop("crm.config_dirty", False):
            _bump(session)

    @event.listens_for(session_class, "do_orm_execute")
    def _bump_after_bulk(state):
        if not (state.is_update or state.is_delete or state.is_insert):
            return None
        table = getattr(state.statement, "table", None)
        if table is None or getattr(table, "name", None) not in _WATCHED:
            return None
        result = state.invoke_statement()
        _bump(state.session)
        return result

    @event.listens_for(session_class, "after_transaction_end")
    def _forget_token(session, transaction):
        # A flush's inner subtransaction ends often and changes nothing; a savepoint may
        # roll back a change, so the token is read again after one.
        if transaction.parent is None or transaction.nested:
            session.info.pop(_SESSION_KEY, None)
            session.info.pop(_NOTES, None)


_install(AppSession)

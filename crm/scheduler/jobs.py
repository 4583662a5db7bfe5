"""How the scheduler runs a job: in an app context, a failure logged and counted.

The jobs themselves live in their packages' `jobs.py` and commit per unit of work there;
this module only calls them.
"""

from __future__ import annotations

import logging
import time

from flask import Flask
from flask_sqlalchemy.session import Session as AppSession
from sqlalchemy.engine import Connection
from sqlalchemy.orm import configure_mappers

from crm.commission.jobs import make_entries_payable
from crm.core import metrics
from crm.core.jobs import purge_idempotency_keys
from crm.documents.jobs import sweep_abandoned_uploads, sweep_orphans
from crm.extensions import db
from crm.messaging.delivery import jobs as delivery
from crm.nudges.jobs import sweep
from crm.privacy.jobs import apply_retention
from crm.webhooks import jobs as webhooks

log = logging.getLogger(__name__)


class _OnConnection(AppSession):
    """The app's session made on one Connection (`bind=`), which it keeps: Flask-SQLAlchemy's
    own picks the engine by the tables' bind key and would ignore it. Its commits commit that
    connection's transactions, and closing it leaves the connection open."""

    def get_bind(self, mapper=None, clause=None, bind=None, **kwargs):
        return bind if bind is not None else self.bind


def _session_on(connection: Connection) -> None:
    """This app context's `db.session`: a new session on `connection`, which must be idle. A
    session joining a transaction already open would not commit it (SQLAlchemy's
    `join_transaction_mode`), and the dispatcher's claim must commit before any send."""
    if connection.in_transaction():
        raise RuntimeError("a connection shared by jobs was left inside a transaction")
    options = {**db.session.session_factory.kw, "bind": connection}
    db.session.registry.set(_OnConnection(**options))


class Jobs:
    """Holds one dispatcher (and its provider connections) for the life of the process."""

    def __init__(self, app: Flask, name: str) -> None:
        self.app = app
        self.dispatcher = delivery.dispatcher_for(app, name)
        self.webhooks = webhooks.dispatcher_for(app, f"{name}-webhooks")
        self.failures = 0  # jobs that raised (logged); `--once` exits non-zero on any
        with app.app_context():
            self.engine = db.engine
        # The ORM's mappers are configured at start (CPU only, no database), not by the
        # first job that compiles a statement: ~0.1 s of CPU that otherwise lands in the
        # first dispatch of a process that then runs for days.
        configure_mappers()

    def _run(self, job, *args, connection: Connection | None = None):
        name, started, failed = getattr(job, "__name__", str(job)), time.perf_counter(), False
        with self.app.app_context():
            try:
                if connection is not None:
                    _session_on(connection)
                return job(*args)
            except Exception:
                failed = True
                self.failures += 1
                db.session.rollback()
                log.exception("job %s failed", name)
                return None
            finally:
                db.session.remove()
                metrics.time_job(name, started, failed)

    def sweep_nudges(self) -> int | None:
        return self._run(sweep)

    def dispatch(self) -> int:
        """Drain what is due, batch after batch, then wait for the next tick.

        The drain runs on one database connection, checked out (and pre-pinged) once: on a
        session of its own, each commit would hand the connection back to the pool and the
        next statement take one out again, paying the pool's pre-ping round trip, twice a
        batch. Its transactions still commit one by one (a batch's claim before its sends; its
        outcomes with the next claim). An error ends the drain (logged and counted), and the
        connection goes back to the pool, which discards it if it broke; the next tick takes
        another."""
        with self.engine.connect() as connection:
            return self._run(delivery.dispatch, self.dispatcher, connection=connection) or 0

    def reconcile(self) -> int | None:
        return self._run(delivery.reconcile, self.dispatcher)

    def purge_idempotency_keys(self) -> int | None:
        return self._run(purge_idempotency_keys)

    def sweep_documents(self) -> int | None:
        return self._run(sweep_orphans)

    def sweep_uploads(self) -> int | None:
        """Resumable uploads abandoned past `CRM_UPLOAD_EXPIRY_HOURS`: parts and rows."""
        return self._run(sweep_abandoned_uploads)

    def commission_payable(self) -> int | None:
        return self._run(make_entries_payable)

    def deliver_webhooks(self) -> int | None:
        """Deliver every webhook that is due (the pump claims as answers come back)."""
        return self._run(webhooks.deliver_webhooks, self.webhooks)

    def reconcile_webhooks(self) -> int | None:
        return self._run(webhooks.reconcile_webhooks, self.webhooks)

    def retention(self) -> int | None:
        return self._run(apply_retention)

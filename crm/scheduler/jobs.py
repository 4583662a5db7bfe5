"""What the scheduler runs. Each job opens an app context and commits per unit of work."""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import Flask

from crm.core.idempotency import purge_expired
from crm.documents.jobs import sweep_orphan_blobs
from crm.documents.storage import LocalStorage
from crm.extensions import db
from crm.messaging.dispatcher import Dispatcher, DispatchSettings
from crm.messaging.transports import from_settings
from crm.nudges.operations import sweep

log = logging.getLogger(__name__)


class Jobs:
    """Holds one dispatcher (and its provider connections) for the life of the process."""

    def __init__(self, app: Flask, name: str) -> None:
        self.app = app
        settings = app.config["CRM"]
        self.dispatcher = Dispatcher(
            from_settings(settings), DispatchSettings.from_config(settings), name=name
        )
        self.failures = 0  # jobs that raised (logged); `--once` exits non-zero on any

    def _run(self, job, *args):
        with self.app.app_context():
            try:
                return job(*args)
            except Exception:
                self.failures += 1
                db.session.rollback()
                log.exception("job %s failed", getattr(job, "__name__", job))
                return None
            finally:
                db.session.remove()

    def sweep_nudges(self) -> int | None:
        return self._run(sweep)

    def dispatch(self) -> int:
        """Drain what is due, batch after batch, then wait for the next tick."""
        handled = 0
        while count := self._run(self.dispatcher.run_once):
            handled += count
        return handled

    def reconcile(self) -> int | None:
        return self._run(self.dispatcher.reconcile_stale)

    def purge_idempotency_keys(self) -> int | None:
        def purge() -> int:
            removed = purge_expired()
            db.session.commit()
            return removed

        return self._run(purge)

    def sweep_documents(self) -> int | None:
        settings = self.app.config["CRM"]
        store = LocalStorage(settings["DOCUMENTS_DIR"])
        grace = timedelta(hours=settings["DOCUMENT_ORPHAN_GRACE_HOURS"])
        return self._run(sweep_orphan_blobs, store, grace)

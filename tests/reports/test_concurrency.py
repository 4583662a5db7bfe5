"""Two transactions counting the same cell at once lose no count (PostgreSQL)."""

from __future__ import annotations

import threading
from datetime import date

from sqlalchemy import select

from crm.extensions import db
from crm.reports.models import StageDaily
from crm.reports.rollups import _upsert
from tests.conftest import postgres_only
from tests.live import live_app, scratch_database

KEY = {"day": date(2026, 1, 5), "stage": "enquiry", "reason": "", "agency_id": 0}
PER_THREAD = 40


@postgres_only
def test_concurrent_increments_of_one_cell_all_count(tmp_path):
    with scratch_database() as url:
        app = live_app(url, tmp_path)
        start = threading.Barrier(4)

        def count() -> None:
            with app.app_context():
                start.wait()
                for _ in range(PER_THREAD):
                    _upsert(StageDaily, {**KEY, "procedure_code": "x"}, {"entered": 1})
                    db.session.commit()
                db.session.remove()

        threads = [threading.Thread(target=count) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        with app.app_context():
            total = db.session.scalar(select(StageDaily.entered))
            db.session.remove()
            db.engine.dispose()
        assert total == 4 * PER_THREAD

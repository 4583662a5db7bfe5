"""The document sweep: stored files no document references go once past a grace period;
everything an upload in flight may still use stays."""

from __future__ import annotations

import hashlib
import os
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from crm.core.db import utcnow
from crm.documents.jobs import sweep_orphan_blobs
from crm.documents.operations import store_document
from crm.documents.upload import storage

GRACE = timedelta(hours=6)


@pytest.fixture
def referral(factory, agency):
    return factory.referral(agency)


def _pdf() -> bytes:
    return b"%PDF-1.4\n% " + uuid.uuid4().hex.encode() + b"\n%%EOF\n"


def _age(path: Path, hours: float) -> None:
    then = (utcnow() - timedelta(hours=hours)).timestamp()
    os.utime(path, (then, then))


def _orphan(hours_old: float) -> Path:
    """A blob in the store as a rolled-back upload leaves it: no row points at it."""
    data = _pdf()
    path = storage().path(hashlib.sha256(data).hexdigest())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    _age(path, hours_old)
    return path


def _stored(referral, agency, tmp_path: Path, data: bytes) -> Path:
    source = tmp_path / f"{uuid.uuid4().hex}.pdf"
    source.write_bytes(data)
    document = store_document(referral, "passport", "passport.pdf", source, agency.actor)
    return storage().path(document.sha256)


def test_a_blob_no_document_references_is_removed_once_past_the_grace_period(session):
    orphan = _orphan(hours_old=7)
    assert sweep_orphan_blobs(storage(), GRACE) >= 1
    assert not orphan.exists()


def test_an_orphan_younger_than_the_grace_period_is_spared_as_an_upload_in_flight(session):
    orphan = _orphan(hours_old=1)
    sweep_orphan_blobs(storage(), GRACE)
    assert orphan.exists()


def test_a_blob_a_document_references_is_kept_however_old(session, referral, agency, tmp_path):
    blob = _stored(referral, agency, tmp_path, _pdf())
    _age(blob, 1000)
    sweep_orphan_blobs(storage(), GRACE)
    assert blob.exists()


def test_a_blob_stored_by_a_request_that_rolled_back_is_swept(session, referral, agency, tmp_path):
    savepoint = session.begin_nested()
    blob = _stored(referral, agency, tmp_path, _pdf())
    savepoint.rollback()  # the blob was kept before the transaction failed to commit
    assert blob.exists()
    _age(blob, 7)
    sweep_orphan_blobs(storage(), GRACE)
    assert not blob.exists()


def test_storing_content_already_on_disk_makes_it_fresh_so_the_sweep_spares_it(
    session, referral, agency, tmp_path
):
    orphan = _orphan(hours_old=7)
    savepoint = session.begin_nested()
    _stored(referral, agency, tmp_path, orphan.read_bytes())  # its row is not committed yet
    savepoint.rollback()  # ...and, as far as the sweep can tell, not there at all
    sweep_orphan_blobs(storage(), GRACE)
    assert orphan.exists()


def test_a_blob_left_set_aside_by_a_killed_sweep_is_put_back_and_judged_again(
    session, referral, agency, tmp_path
):
    blob = _stored(referral, agency, tmp_path, _pdf())
    _age(blob, 7)
    blob.rename(blob.with_name(blob.name + ".sweep"))
    sweep_orphan_blobs(storage(), GRACE)
    assert blob.exists()
    assert not blob.with_name(blob.name + ".sweep").exists()


def test_a_temp_file_left_by_a_killed_upload_is_removed_once_past_the_grace_period(session):
    store = storage()
    store.tmp.mkdir(parents=True, exist_ok=True)
    stale, fresh = store.tmp / "upload-killed", store.tmp / "upload-streaming"
    stale.write_bytes(b"half an upload")
    fresh.write_bytes(b"an upload still arriving")
    _age(stale, 7)
    try:
        sweep_orphan_blobs(store, GRACE)
        assert not stale.exists()
        assert fresh.exists()
    finally:
        fresh.unlink(missing_ok=True)


def test_the_scheduler_job_sweeps_with_the_configured_grace(app, session, monkeypatch):
    from crm.scheduler.jobs import Jobs

    orphan = _orphan(hours_old=3)
    monkeypatch.setitem(app.config["CRM"], "DOCUMENT_ORPHAN_GRACE_HOURS", 2)
    jobs = Jobs(app, name="test")
    assert jobs.sweep_documents() >= 1
    assert not orphan.exists()

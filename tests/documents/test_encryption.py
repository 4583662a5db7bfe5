"""Documents at rest: encrypted per document, wrapped by a master key, rotated without
re-encrypting, tampering detected, plaintext-hash deduplication kept, legacy files read."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from crm.config import ConfigError, load_config
from crm.documents.encryption import (
    MAGIC,
    DocumentUnreadable,
    Header,
    Keyring,
    decrypt,
    encrypt,
)
from crm.documents.jobs import encrypt_legacy, rewrap_all
from crm.documents.models import Document
from crm.documents.operations import store_document
from crm.documents.upload import storage
from tests.documents.test_documents import upload

API = "/api/v1"
OLD = os.urandom(32)
NEW = os.urandom(32)


@pytest.fixture
def referral(factory, agency):
    return factory.referral(agency)


@pytest.fixture
def keys(app, monkeypatch):
    """Point the app at explicit master keys: `keys({"old": OLD}, "old")`."""

    def use(master_keys: dict[str, bytes], active: str) -> None:
        monkeypatch.setitem(app.config["CRM"], "DOCUMENTS_MASTER_KEYS", master_keys)
        monkeypatch.setitem(app.config["CRM"], "DOCUMENTS_ACTIVE_KEY_ID", active)

    return use


def _pdf(size: int = 0) -> bytes:
    body = uuid.uuid4().hex.encode() + os.urandom(size)
    return b"%PDF-1.4\n% " + body + b"\n%%EOF\n"


def _store(referral, agency, tmp_path: Path, data: bytes) -> Document:
    source = tmp_path / f"{uuid.uuid4().hex}.pdf"
    source.write_bytes(data)
    return store_document(referral, "passport", "passport.pdf", source, agency.actor)


def _sealed_bytes(data: bytes, keyring: Keyring, chunk_size: int) -> bytes:
    _, pieces = encrypt(io.BytesIO(data), keyring, chunk_size=chunk_size)
    return b"".join(pieces)


def _opened(blob: bytes, keyring: Keyring) -> bytes:
    source = io.BytesIO(blob)
    header = Header.read(source)
    return b"".join(decrypt(source, header, keyring.unwrap(header.sealed)))


RING = Keyring({"k1": OLD}, "k1")


@pytest.mark.parametrize("size", [1, 1000, 1024, 4096, 5000])
def test_a_file_of_any_size_decrypts_to_exactly_its_plaintext(size):
    data = os.urandom(size)
    assert _opened(_sealed_bytes(data, RING, chunk_size=1024), RING) == data


def test_the_same_plaintext_encrypts_differently_each_time():
    data = os.urandom(3000)
    assert _sealed_bytes(data, RING, 1024) != _sealed_bytes(data, RING, 1024)


@pytest.mark.parametrize("offset", [0, 1500, -1])
def test_a_flipped_byte_anywhere_in_the_content_fails_the_integrity_check(offset):
    blob = bytearray(_sealed_bytes(os.urandom(5000), RING, chunk_size=1024))
    header_size = len(Header.read(io.BytesIO(bytes(blob))).raw)
    blob[header_size + offset if offset >= 0 else offset] ^= 0x01
    with pytest.raises(DocumentUnreadable, match="integrity check"):
        _opened(bytes(blob), RING)


def test_a_flipped_byte_in_the_header_fails_the_integrity_check():
    blob = bytearray(_sealed_bytes(os.urandom(100), RING, chunk_size=1024))
    blob[len(MAGIC) + 5] ^= 0x01  # the nonce prefix
    with pytest.raises(DocumentUnreadable):
        _opened(bytes(blob), RING)


def test_a_file_cut_at_a_chunk_boundary_is_detected_not_returned_short():
    blob = _sealed_bytes(os.urandom(3 * 1024), RING, chunk_size=1024)
    header_size = len(Header.read(io.BytesIO(blob)).raw)
    with pytest.raises(DocumentUnreadable):
        _opened(blob[: header_size + 2 * (1024 + 16)], RING)


def test_chunks_before_a_damaged_one_are_verified_and_nothing_after_it_is_returned():
    data = os.urandom(4 * 1024)
    blob = bytearray(_sealed_bytes(data, RING, chunk_size=1024))
    header_size = len(Header.read(io.BytesIO(bytes(blob))).raw)
    blob[header_size + 2 * (1024 + 16) + 7] ^= 0x80  # inside the third chunk
    source = io.BytesIO(bytes(blob))
    header = Header.read(source)
    returned = []
    with pytest.raises(DocumentUnreadable, match="chunk 2"):
        for chunk in decrypt(source, header, RING.unwrap(header.sealed)):
            returned.append(chunk)
    assert b"".join(returned) == data[: 2 * 1024]


def test_a_stored_document_is_not_readable_on_disk(session, referral, agency, tmp_path):
    data = _pdf(3000)
    document = _store(referral, agency, tmp_path, data)
    on_disk = storage().path(document.sha256).read_bytes()
    assert on_disk.startswith(MAGIC)
    assert data[:40] not in on_disk
    assert document.key_id and document.wrapped_key


def test_a_multi_chunk_upload_downloads_byte_for_byte(client, session, agency, referral):
    data = _pdf(int(2.5 * 2**20))  # three chunks of the format's 1 MiB
    body = upload(client, agency, referral, "passport", data, "big.pdf").json
    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    response = client.get(f"{API}/documents/{body['id']}/content", headers=agency.headers())
    assert response.status_code == 200
    assert response.data == data
    response.close()


def test_a_tampered_file_is_a_clear_error_on_download(client, session, agency, referral):
    body = upload(client, agency, referral, "passport", _pdf(100), "p.pdf").json
    path = storage().path(body["sha256"])
    blob = bytearray(path.read_bytes())
    blob[-20] ^= 0x01
    path.write_bytes(bytes(blob))
    response = client.get(f"{API}/documents/{body['id']}/content", headers=agency.headers())
    assert response.status_code == 500
    assert response.json["type"].endswith("document-unreadable")
    assert "integrity check" in response.json["detail"]


def test_the_same_content_uploaded_twice_is_stored_once_and_opens_for_both(
    session, referral, agency, tmp_path
):
    data = _pdf(2000)
    first = _store(referral, agency, tmp_path, data)
    second = _store(referral, agency, tmp_path, data)
    assert first.sha256 == second.sha256 == hashlib.sha256(data).hexdigest()
    assert len([p for p in storage().root.rglob(first.sha256) if p.is_file()]) == 1
    assert storage().read_bytes(first.sha256, first.sealed) == data
    assert storage().read_bytes(second.sha256, second.sealed) == data
    keyring = storage().keyring
    assert keyring.unwrap(first.sealed) == keyring.unwrap(second.sealed)


def test_after_a_rewrap_the_old_master_key_can_be_removed(
    session, referral, agency, tmp_path, keys
):
    keys({"old": OLD}, "old")
    data = _pdf(500)
    document = _store(referral, agency, tmp_path, data)
    assert document.key_id == "old"
    keys({"old": OLD, "new": NEW}, "new")
    assert rewrap_all() == 1
    keys({"new": NEW}, "new")
    reloaded = session.get(Document, document.id)
    assert reloaded.key_id == "new"
    assert storage().read_bytes(reloaded.sha256, reloaded.sealed) == data


def test_a_rewrap_leaves_the_stored_content_untouched(session, referral, agency, tmp_path, keys):
    keys({"old": OLD}, "old")
    document = _store(referral, agency, tmp_path, _pdf(500))
    before = storage().path(document.sha256).read_bytes()
    keys({"old": OLD, "new": NEW}, "new")
    rewrap_all()
    assert storage().path(document.sha256).read_bytes() == before


def test_content_stored_under_a_retired_key_is_still_deduplicated(
    session, referral, agency, tmp_path, keys
):
    keys({"old": OLD}, "old")
    data = _pdf(500)
    first = _store(referral, agency, tmp_path, data)
    keys({"old": OLD, "new": NEW}, "new")
    rewrap_all()
    keys({"new": NEW}, "new")
    blob_before = storage().path(first.sha256).read_bytes()
    second = _store(referral, agency, tmp_path, data)
    assert storage().path(first.sha256).read_bytes() == blob_before  # reused, not rewritten
    assert storage().read_bytes(second.sha256, second.sealed) == data
    assert storage().read_bytes(first.sha256, session.get(Document, first.id).sealed) == data


def test_a_document_whose_master_key_is_missing_says_so(session, referral, agency, tmp_path, keys):
    keys({"old": OLD}, "old")
    document = _store(referral, agency, tmp_path, _pdf(100))
    keys({"new": NEW}, "new")
    with pytest.raises(DocumentUnreadable, match="'old' is not in CRM_DOCUMENTS_MASTER_KEYS"):
        storage().read_bytes(document.sha256, document.sealed)


def _make_legacy(session, document: Document, data: bytes) -> None:
    """As a file stored before encryption at rest: plaintext on disk, no key on the row."""
    storage().path(document.sha256).write_bytes(data)
    document.key_id = document.wrapped_key = None
    session.flush()


def test_a_legacy_unencrypted_document_still_downloads(client, session, agency, referral, tmp_path):
    data = _pdf(100)
    document = _store(referral, agency, tmp_path, data)
    _make_legacy(session, document, data)
    response = client.get(f"{API}/documents/{document.id}/content", headers=agency.headers())
    assert response.status_code == 200
    assert response.data == data
    response.close()


def test_encrypting_legacy_files_in_place_keeps_them_readable(session, agency, referral, tmp_path):
    data = _pdf(100)
    document = _store(referral, agency, tmp_path, data)
    _make_legacy(session, document, data)
    assert encrypt_legacy() == (1, [])
    reloaded = session.scalar(select(Document).where(Document.id == document.id))
    assert reloaded.key_id is not None
    assert storage().path(reloaded.sha256).read_bytes().startswith(MAGIC)
    assert storage().read_bytes(reloaded.sha256, reloaded.sealed) == data


def test_a_plaintext_file_under_an_encrypted_record_is_refused(session, agency, referral, tmp_path):
    data = _pdf(100)
    document = _store(referral, agency, tmp_path, data)
    storage().path(document.sha256).write_bytes(data)  # swapped for a plaintext copy
    with pytest.raises(DocumentUnreadable, match="not encrypted"):
        storage().read_bytes(document.sha256, document.sealed)


PRODUCTION = {
    "CRM_ENV": "production",
    "CRM_SECRET_KEY": "x" * 40,
    "CRM_DATABASE_URL": "postgresql+psycopg://u@db/crm",
    "CRM_RATE_LIMIT_STORAGE_URL": "redis://cache:6379/0",
}


def test_production_refuses_to_start_without_a_documents_master_key():
    with pytest.raises(ConfigError, match="CRM_DOCUMENTS_MASTER_KEYS"):
        load_config(PRODUCTION)


def test_production_starts_with_a_master_key():
    key = base64.b64encode(NEW).decode()
    values = load_config({**PRODUCTION, "CRM_DOCUMENTS_MASTER_KEYS": f"2026:{key}"})
    assert values["DOCUMENTS_MASTER_KEYS"] == {"2026": NEW}


@pytest.mark.parametrize(
    ("raw", "message"),
    [("k1:not-base64!", "not base64"), ("k1:" + base64.b64encode(b"short").decode(), "32 bytes")],
)
def test_a_malformed_master_key_is_refused_naming_the_setting(raw, message):
    with pytest.raises(ConfigError, match=f"CRM_DOCUMENTS_MASTER_KEYS.*{message}"):
        load_config({"CRM_DOCUMENTS_MASTER_KEYS": raw})


def test_an_active_key_id_that_is_not_configured_is_refused():
    key = base64.b64encode(NEW).decode()
    with pytest.raises(ConfigError, match="CRM_DOCUMENTS_ACTIVE_KEY_ID"):
        load_config({"CRM_DOCUMENTS_MASTER_KEYS": f"a:{key}", "CRM_DOCUMENTS_ACTIVE_KEY_ID": "b"})


def test_a_blob_the_sweep_set_aside_never_replaces_a_copy_stored_meanwhile(
    session, referral, agency, tmp_path
):
    from datetime import timedelta

    from crm.documents.jobs import sweep_orphan_blobs

    data = _pdf(100)
    document = _store(referral, agency, tmp_path, data)
    path = storage().path(document.sha256)
    # a killed sweep's leftover: the same content under another data key, set aside
    _, pieces = encrypt(io.BytesIO(data), storage().keyring)
    path.with_name(path.name + ".sweep").write_bytes(b"".join(pieces))
    sweep_orphan_blobs(storage(), timedelta(hours=6))
    assert not path.with_name(path.name + ".sweep").exists()
    assert storage().read_bytes(document.sha256, document.sealed) == data


def test_the_rewrap_command_reports_what_it_rewrapped(
    app, session, referral, agency, tmp_path, keys
):
    keys({"old": OLD}, "old")
    document = _store(referral, agency, tmp_path, _pdf(100))
    keys({"old": OLD, "new": NEW}, "new")
    result = app.test_cli_runner().invoke(args=["crm", "documents", "rewrap"])
    assert result.exit_code == 0, result.output
    assert "re-wrapped 1 document key(s)" in result.output
    assert session.get(Document, document.id).key_id == "new"

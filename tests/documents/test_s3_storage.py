"""Documents on an S3-compatible store: tested against moto's S3 server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import os
import socket
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import boto3
import pytest

from crm.core.db import utcnow
from crm.documents.encryption import MAGIC, Keyring
from crm.documents.jobs import sweep_orphan_blobs
from crm.documents.operations import store_document
from crm.documents.storage_s3 import PREFIX, S3Storage
from crm.documents.upload import storage

API = "/api/v1"
BUCKET = "crm-documents-test"
GRACE = timedelta(hours=6)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def client_s3(s3_endpoint):
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    yield s3
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for item in page.get("Contents", []):
            s3.delete_object(Bucket=BUCKET, Key=item["Key"])
    s3.delete_bucket(Bucket=BUCKET)


@pytest.fixture
def on_s3(app, monkeypatch, client_s3, s3_endpoint):
    """The app's documents on the S3 server for this test."""
    settings = app.config["CRM"]
    monkeypatch.setitem(settings, "DOCUMENTS_STORAGE", "s3")
    monkeypatch.setitem(settings, "S3_BUCKET", BUCKET)
    monkeypatch.setitem(settings, "S3_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setitem(settings, "S3_REGION", "us-east-1")
    return client_s3


@pytest.fixture
def referral(factory, agency):
    return factory.referral(agency)


def _pdf(size: int = 0) -> bytes:
    return b"%PDF-1.4\n% " + uuid.uuid4().hex.encode() + os.urandom(size) + b"\n%%EOF\n"


def _object(s3, sha: str) -> bytes:
    return s3.get_object(Bucket=BUCKET, Key=PREFIX + sha)["Body"].read()


def test_the_configured_store_is_s3(app, on_s3, session):
    assert isinstance(storage(), S3Storage)


def test_an_upload_is_stored_encrypted_in_the_bucket_and_downloads(
    client, session, agency, referral, on_s3
):
    from tests.documents.test_documents import upload

    data = _pdf(1000)
    body = upload(client, agency, referral, "passport", data, "p.pdf").json
    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    stored = _object(on_s3, body["sha256"])
    assert stored.startswith(MAGIC)
    assert data[:30] not in stored
    response = client.get(f"{API}/documents/{body['id']}/content", headers=agency.headers())
    assert response.status_code == 200
    assert response.data == data
    response.close()


def test_a_big_file_goes_up_in_parts_and_comes_back_whole(tmp_path, on_s3, s3_endpoint):
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    store = S3Storage(
        s3,
        BUCKET,
        tmp_path,
        Keyring({"k": os.urandom(32)}, "k"),
        chunk_size=64 * 1024,
        part_size=5 * 2**20,
    )
    data = os.urandom(12 * 2**20 + 123)  # three parts of 5 MiB, 5 MiB and the rest
    sha = hashlib.sha256(data).hexdigest()
    source = tmp_path / "upload-big"
    source.write_bytes(data)
    sealed = store.keep(source, sha)
    parts = s3.head_object(Bucket=BUCKET, Key=PREFIX + sha, PartNumber=1)
    assert int(parts["PartsCount"]) == 3
    assert b"".join(store.open(sha, sealed)) == data
    assert not source.exists()


def test_the_same_content_twice_is_one_object(session, referral, agency, tmp_path, on_s3):
    data = _pdf(100)
    documents = []
    for _ in range(2):
        source = tmp_path / f"{uuid.uuid4().hex}.pdf"
        source.write_bytes(data)
        documents.append(store_document(referral, "passport", "p.pdf", source, agency.actor))
    listed = on_s3.list_objects_v2(Bucket=BUCKET, Prefix=PREFIX)["Contents"]
    assert [item["Key"] for item in listed] == [PREFIX + documents[0].sha256]
    for document in documents:
        assert storage().read_bytes(document.sha256, document.sealed) == data


def test_a_deleted_document_file_is_gone_from_the_bucket(session, tmp_path, on_s3):
    data = _pdf(10)
    sha = hashlib.sha256(data).hexdigest()
    source = tmp_path / "upload-x"
    source.write_bytes(data)
    storage().keep(source, sha)
    assert storage().exists(sha)
    storage().delete(sha)
    assert not storage().exists(sha)


def test_the_sweep_removes_an_old_orphan_object_and_keeps_referenced_ones(
    session, referral, agency, tmp_path, on_s3
):
    kept_data, orphan_data = _pdf(10), _pdf(10)
    source = tmp_path / "kept.pdf"
    source.write_bytes(kept_data)
    kept = store_document(referral, "passport", "p.pdf", source, agency.actor)
    orphan_sha = hashlib.sha256(orphan_data).hexdigest()
    orphan = tmp_path / "upload-orphan"
    orphan.write_bytes(orphan_data)
    storage().keep(orphan, orphan_sha)  # as a rolled-back upload leaves it
    later = utcnow() + GRACE + timedelta(minutes=1)
    assert sweep_orphan_blobs(storage(), GRACE, now=later) == 1
    assert not storage().exists(orphan_sha)
    assert storage().exists(kept.sha256)


def test_the_sweep_spares_an_orphan_object_younger_than_the_grace(session, tmp_path, on_s3):
    data = _pdf(10)
    sha = hashlib.sha256(data).hexdigest()
    source = tmp_path / "upload-young"
    source.write_bytes(data)
    storage().keep(source, sha)
    assert sweep_orphan_blobs(storage(), GRACE) == 0
    assert storage().exists(sha)


def test_the_sweep_aborts_multipart_uploads_left_open(session, on_s3):
    on_s3.create_multipart_upload(Bucket=BUCKET, Key=PREFIX + "0" * 64)
    later = utcnow() + GRACE + timedelta(minutes=1)
    sweep_orphan_blobs(storage(), GRACE, now=later)
    assert not on_s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads")


def test_a_second_writer_of_the_same_new_content_reuses_the_first_ones_key(
    tmp_path, on_s3, s3_endpoint
):
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    keyring = Keyring({"k": os.urandom(32)}, "k")
    store = S3Storage(s3, BUCKET, tmp_path, keyring)
    data = _pdf(100)
    sha = hashlib.sha256(data).hexdigest()
    first_source = tmp_path / "a"
    first_source.write_bytes(data)
    first = store.keep(first_source, sha)
    # the second host had already decided to write (no object when it looked)
    second_source: Path = tmp_path / "b"
    second_source.write_bytes(data)
    assert store._write(second_source, sha, exclusive=True) is None  # refused: it exists
    assert keyring.unwrap(store.keep(second_source, sha)) == keyring.unwrap(first)


def test_a_plaintext_object_copied_in_from_an_old_disk_store_still_reads(session, on_s3):
    data = _pdf(3000)
    sha = hashlib.sha256(data).hexdigest()
    on_s3.put_object(Bucket=BUCKET, Key=PREFIX + sha, Body=data)
    assert storage().read_bytes(sha, None) == data


def test_readyz_asks_the_bucket(client, app, on_s3, monkeypatch):
    assert client.get("/readyz").json["storage"] == "ok"
    monkeypatch.setitem(app.config["CRM"], "S3_BUCKET", "no-such-bucket")
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json["checks"]["storage"].startswith(
        "the documents bucket no-such-bucket does not answer"
    )


def test_a_resumable_upload_goes_to_the_bucket_sealed_as_it_arrived(
    client, session, agency, referral, on_s3
):
    from tests.documents.test_resumable import send, start

    data = _pdf(3 * 2**20)  # past a few sealed chunks and into an S3 multipart upload
    location = start(client, agency, referral, data, kind="medical_record").headers["Location"]
    assert send(client, agency, location, 0, data[: 2**20 + 5]).status_code == 204
    done = send(client, agency, location, 2**20 + 5, data[2**20 + 5 :])
    assert done.status_code == 200, done.json
    stored = _object(on_s3, done.json["sha256"])
    assert stored.startswith(MAGIC) and data[:30] not in stored
    response = client.get(f"{API}/documents/{done.json['id']}/content", headers=agency.headers())
    assert response.data == data
    response.close()
    again = start(client, agency, referral, data, kind="medical_record").headers["Location"]
    twice = send(client, agency, again, 0, data)
    assert twice.json["sha256"] == done.json["sha256"]  # the same content: one object
    response = client.get(f"{API}/documents/{twice.json['id']}/content", headers=agency.headers())
    assert response.data == data
    response.close()

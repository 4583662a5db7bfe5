"""Resumable uploads (tus 1.0.0) on the partner API: chunks, offsets, the hash at the end,
the same intake as a one-shot upload, another agency kept out, abandoned parts swept."""

import base64
import errno
import hashlib
import itertools
import os
from datetime import timedelta

import pytest
from sqlalchemy import select

from crm.core.audit import AuditEvent
from crm.core.db import utcnow
from crm.documents import parts, resumable
from crm.documents import upload as upload_module
from crm.documents.encryption import Sealed
from crm.documents.jobs import sweep_abandoned_uploads
from crm.documents.models import Document, UploadSession
from crm.documents.samples import write_sample_mri
from crm.documents.upload import storage
from tests.documents.test_documents import PDF

API = "/api/v1"
POLYGLOT = b"MZ\x90\x00" + b"payload".ljust(124, b"!")


@pytest.fixture
def referral(factory, agency):
    return factory.referral(agency, patient={"date_of_birth": "1980-04-02"})


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def tus(caller, **extra: str) -> dict[str, str]:
    return caller.headers(**{"Tus-Resumable": "1.0.0", **extra})


def start(
    client, caller, referral, data: bytes, kind="mri_study", name="study.dcm", sha=None, **extra
):
    sha = sha or hashlib.sha256(data).hexdigest()
    meta = f"kind {_b64(kind)},filename {_b64(name)},sha256 {_b64(sha)}"
    headers = {"Upload-Length": str(len(data)), "Upload-Metadata": meta, **extra}
    return client.post(f"{API}/referrals/{referral.id}/uploads", headers=tus(caller, **headers))


def send(client, caller, location: str, offset: int, chunk: bytes):
    return client.patch(
        location,
        data=chunk,
        headers=tus(
            caller,
            **{"Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"},
        ),
    )


def offset(client, caller, location: str) -> int:
    response = client.head(location, headers=tus(caller))
    assert response.status_code == 200
    return int(response.headers["Upload-Offset"])


def mri(tmp_path, pixels: int = 200_000, **kwargs) -> bytes:
    """A sample MR whose pixel data (its last element) is `pixels` random bytes long."""
    small = write_sample_mri(tmp_path / "study.dcm", **kwargs).read_bytes()
    assert small[-28:-16] == b"\xe0\x7f\x10\x00OW\x00\x00\x10\x00\x00\x00"
    element = b"\xe0\x7f\x10\x00OW\x00\x00" + pixels.to_bytes(4, "little")
    return small[:-28] + element + os.urandom(pixels)


def test_an_mri_sent_in_three_chunks_becomes_a_document_like_a_one_shot_upload(
    client, session, agency, referral, tmp_path
):
    data = mri(tmp_path, preamble=POLYGLOT)
    created = start(client, agency, referral, data)
    assert created.status_code == 201, created.json
    location = created.headers["Location"]
    assert created.headers["Tus-Resumable"] == "1.0.0"
    assert created.headers["Upload-Offset"] == "0"
    third = len(data) // 3
    for begin, end in ((0, third), (third, 2 * third)):
        answer = send(client, agency, location, begin, data[begin:end])
        assert answer.status_code == 204, answer.json
        assert answer.headers["Upload-Offset"] == str(end)
        assert offset(client, agency, location) == end
    last = send(client, agency, location, 2 * third, data[2 * third :])
    assert last.status_code == 200, last.json
    body = last.json
    assert body["content_type"] == "dicom"
    assert body["dicom"]["modality"] == "MR"
    stored_bytes = b"\0" * 128 + data[128:]  # the polyglot preamble zeroed, as one-shot
    assert body["sha256"] == hashlib.sha256(stored_bytes).hexdigest()
    document = session.get(Document, body["id"])
    assert storage().read_bytes(document.sha256, document.sealed) == stored_bytes
    session.refresh(referral)
    assert referral.stage == "mri_review"
    assert session.scalar(
        select(AuditEvent).where(AuditEvent.action == "document.upload")
    ).detail == {"document_id": document.id, "kind": "mri_study"}
    head = client.head(location, headers=tus(agency))
    assert head.headers["Upload-Offset"] == str(len(data))
    assert head.headers["Upload-Document-Id"] == str(document.id)
    assert not resumable.parts_dir().joinpath(f"{location.rsplit('/', 1)[1]}.part").exists()


def test_a_chunk_at_the_wrong_offset_is_409_naming_the_offset_to_send_from(
    client, agency, referral, tmp_path
):
    data = mri(tmp_path)
    location = start(client, agency, referral, data).headers["Location"]
    assert send(client, agency, location, 0, data[:1000]).status_code == 204
    refused = send(client, agency, location, 500, data[500:2000])
    assert refused.status_code == 409
    assert refused.mimetype == "application/problem+json"
    assert refused.json["type"].endswith("upload-offset-mismatch")
    assert refused.json["offset"] == 1000
    assert offset(client, agency, location) == 1000


def test_a_resume_in_another_worker_hashes_the_part_again_and_still_verifies(
    app, client, agency, referral, tmp_path
):
    data = mri(tmp_path)
    location = start(client, agency, referral, data).headers["Location"]
    send(client, agency, location, 0, data[:4000])
    app.extensions["crm.upload_digests"].clear()  # as if another worker took the rest
    answer = send(client, agency, location, 4000, data[4000:])
    assert answer.status_code == 200, answer.json
    assert answer.json["sha256"] == hashlib.sha256(data).hexdigest()


def test_bytes_that_do_not_hash_to_the_declared_sha256_are_refused_and_removed(
    client, session, agency, referral, tmp_path
):
    data = mri(tmp_path)
    location = start(client, agency, referral, data, sha="0" * 64).headers["Location"]
    refused = send(client, agency, location, 0, data)
    assert refused.status_code == 422
    assert refused.json["type"].endswith("upload-hash-mismatch")
    head = client.head(location, headers=tus(agency))
    assert "not the declared" in head.headers["Upload-Refused"]
    assert session.scalar(select(Document).where(Document.referral_id == referral.id)) is None
    assert not resumable.parts_dir().joinpath(f"{location.rsplit('/', 1)[1]}.part").exists()
    assert send(client, agency, location, len(data), b"x").status_code == 409


def test_a_file_the_kind_does_not_take_is_refused_at_the_end_like_a_one_shot_upload(
    client, agency, referral
):
    location = start(client, agency, referral, PDF, name="report.pdf").headers["Location"]
    refused = send(client, agency, location, 0, PDF)
    assert refused.status_code == 415
    assert "not accepted as mri_study" in refused.json["detail"]


def test_a_file_larger_than_its_kind_allows_is_413_before_any_byte(client, agency, referral):
    answer = client.post(
        f"{API}/referrals/{referral.id}/uploads",
        headers=tus(
            agency,
            **{
                "Upload-Length": str(26 * 2**20),
                "Upload-Metadata": f"kind {_b64('passport')},sha256 {_b64('a' * 64)}",
            },
        ),
    )
    assert answer.status_code == 413


def test_another_agency_neither_sees_nor_sends_to_an_upload(
    client, factory, agency, referral, tmp_path
):
    other = factory.agency()
    data = mri(tmp_path)
    assert start(client, other, referral, data).status_code == 404
    location = start(client, agency, referral, data).headers["Location"]
    assert client.head(location, headers=tus(other)).status_code == 404
    assert send(client, other, location, 0, data).status_code == 404
    assert client.delete(location, headers=tus(other)).status_code == 404
    assert offset(client, agency, location) == 0


def test_a_request_without_the_tus_version_is_412(client, agency, referral):
    answer = client.post(
        f"{API}/referrals/{referral.id}/uploads",
        headers=agency.headers(**{"Upload-Length": "10"}),
    )
    assert answer.status_code == 412
    assert answer.json["version"] == "1.0.0"


def test_a_cancelled_upload_loses_its_part_and_its_row(client, session, agency, referral, tmp_path):
    data = mri(tmp_path)
    location = start(client, agency, referral, data).headers["Location"]
    send(client, agency, location, 0, data[:100])
    assert client.delete(location, headers=tus(agency)).status_code == 204
    assert client.head(location, headers=tus(agency)).status_code == 404
    assert session.scalars(select(UploadSession)).all() == []
    assert not resumable.parts_dir().joinpath(f"{location.rsplit('/', 1)[1]}.part").exists()


def test_the_sweep_removes_abandoned_uploads_and_their_parts_and_spares_live_ones(
    app, client, session, agency, referral, tmp_path
):
    data = mri(tmp_path)
    abandoned = start(client, agency, referral, data).headers["Location"]
    live = start(client, agency, referral, data).headers["Location"]
    send(client, agency, abandoned, 0, data[:100])
    send(client, agency, live, 0, data[:100])
    old_id, live_id = abandoned.rsplit("/", 1)[1], live.rsplit("/", 1)[1]
    session.get(UploadSession, old_id).expires_at = utcnow() - timedelta(minutes=1)
    stray = resumable.parts_dir() / f"{'f' * 32}.part"  # its row's transaction rolled back
    stray.write_bytes(b"x")
    long_ago = (utcnow() - timedelta(hours=25)).timestamp()
    os.utime(stray, (long_ago, long_ago))
    session.flush()
    assert sweep_abandoned_uploads() == 2
    assert session.get(UploadSession, old_id) is None
    assert not (resumable.parts_dir() / f"{old_id}.part").exists()
    assert not stray.exists()
    assert session.get(UploadSession, live_id) is not None
    assert offset(client, agency, live) == 100


def test_a_retried_creation_with_the_same_idempotency_key_is_the_same_upload(
    client, session, agency, referral, tmp_path
):
    data = mri(tmp_path)
    first = start(client, agency, referral, data, **{"Idempotency-Key": "start-1"})
    again = start(client, agency, referral, data, **{"Idempotency-Key": "start-1"})
    assert first.status_code == again.status_code == 201
    assert again.headers["Location"] == first.headers["Location"]
    assert len(session.scalars(select(UploadSession)).all()) == 1


@pytest.fixture
def small_chunks(monkeypatch):
    """Parts sealed in 4 KiB chunks, so a PATCH of a small file spans many of them (the
    next read into one buffer while the chunk before is sealed from the other)."""
    monkeypatch.setattr(storage(), "chunk_size", 4096)


def _stored(session, document_id: int) -> bytes:
    document = session.get(Document, document_id)
    return storage().read_bytes(document.sha256, Sealed(document.key_id, document.wrapped_key))


def test_patches_spanning_many_chunks_are_sealed_in_order_and_stored_whole(
    client, session, agency, referral, tmp_path, small_chunks
):
    data = mri(tmp_path, preamble=POLYGLOT)
    location = start(client, agency, referral, data).headers["Location"]
    cuts = [0, 10_000, 60_001, 60_002, 131_072, len(data)]
    for begin, end in itertools.pairwise(cuts):
        response = send(client, agency, location, begin, data[begin:end])
        assert response.status_code in (200, 204), response.json
    assert response.status_code == 200
    stored = _stored(session, response.json["id"])
    assert stored == b"\0" * 128 + data[128:]
    assert response.json["sha256"] == hashlib.sha256(stored).hexdigest()


@pytest.mark.parametrize("preamble", [POLYGLOT, b"\0" * 128], ids=["zeroed", "as sent"])
def test_patches_each_on_another_worker_read_the_part_once_at_the_end(
    app, client, session, agency, referral, tmp_path, small_chunks, monkeypatch, preamble
):
    """A worker without the running digests only counts; the request that completes the
    upload hashes the part once, instead of every change of worker re-reading it."""
    reads = []
    original = parts.SealedPart.plaintext_chunks

    def counted(part):
        reads.append(part.offset())
        yield from original(part)

    monkeypatch.setattr(parts.SealedPart, "plaintext_chunks", counted)
    data = mri(tmp_path, preamble=preamble)
    location = start(client, agency, referral, data).headers["Location"]
    cuts = [0, 5_000, 20_000, 50_000, 90_001, 150_000, len(data)]
    for begin, end in itertools.pairwise(cuts):
        app.extensions["crm.upload_digests"].clear()  # every PATCH on another worker
        response = send(client, agency, location, begin, data[begin:end])
        assert response.status_code in (200, 204), response.json
    assert response.status_code == 200, response.json
    assert reads == [len(data)]  # one pass, at the end, over the complete part
    stored = _stored(session, response.json["id"])
    assert stored == (b"\0" * 128 + data[128:] if preamble == POLYGLOT else data)
    assert response.json["sha256"] == hashlib.sha256(stored).hexdigest()


def test_a_worker_that_saw_every_byte_reads_nothing_again(
    client, agency, referral, tmp_path, small_chunks, monkeypatch
):
    reads = []
    original = parts.SealedPart.plaintext_chunks
    monkeypatch.setattr(
        parts.SealedPart, "plaintext_chunks", lambda part: reads.append(1) or original(part)
    )
    data = mri(tmp_path, preamble=POLYGLOT)
    location = start(client, agency, referral, data).headers["Location"]
    for begin, end in itertools.pairwise([0, 7_000, 70_000, len(data)]):
        response = send(client, agency, location, begin, data[begin:end])
    assert response.status_code == 200, response.json
    assert reads == []


def test_a_chunk_that_fails_to_be_written_leaves_the_upload_at_its_last_whole_chunk(
    client, session, agency, referral, tmp_path, small_chunks, monkeypatch
):
    """The chunk being read when the one before fails to be written is not kept as the
    tail: the part stays at what is on disk, and the client resumes from there."""
    data = mri(tmp_path, preamble=POLYGLOT)
    location = start(client, agency, referral, data).headers["Location"]
    write_chunk, calls = parts.SealedPart._write_chunk, []

    def full_on_the_third(self, *args):
        calls.append(1)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return write_chunk(self, *args)

    monkeypatch.setattr(parts.SealedPart, "_write_chunk", full_on_the_third)
    assert send(client, agency, location, 0, data).status_code == 507
    monkeypatch.undo()
    assert offset(client, agency, location) == 2 * 4096
    response = send(client, agency, location, 2 * 4096, data[2 * 4096 :])
    assert response.status_code == 200, response.json
    assert _stored(session, response.json["id"]) == b"\0" * 128 + data[128:]


def test_a_part_is_written_back_while_it_arrives(
    client, agency, referral, tmp_path, small_chunks, monkeypatch
):
    synced = []
    monkeypatch.setattr(upload_module, "FLUSH_EVERY", 16 * 1024)
    monkeypatch.setattr(os, "fdatasync", synced.append)
    data = mri(tmp_path)
    location = start(client, agency, referral, data).headers["Location"]
    assert send(client, agency, location, 0, data[:100_000]).status_code == 204
    assert synced  # started while the PATCH was still sending, not only at the end


@pytest.mark.parametrize("sent", [100_000, 8 * 4096])  # the failure seen mid-PATCH, or last
def test_a_write_back_failure_gives_the_upload_up(
    client, agency, referral, tmp_path, small_chunks, monkeypatch, sent
):
    """An error the early flush saw would not be reported again to the fsync that keeps
    the part: the part goes, and the client has to start again."""

    def failing(_fd):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(upload_module, "FLUSH_EVERY", 16 * 1024)
    monkeypatch.setattr(os, "fdatasync", failing)
    data = mri(tmp_path)
    location = start(client, agency, referral, data).headers["Location"]
    assert send(client, agency, location, 0, data[:sent]).status_code == 500
    monkeypatch.undo()
    again = send(client, agency, location, 0, data)
    assert again.status_code == 409
    assert again.json["type"].endswith("upload-closed")

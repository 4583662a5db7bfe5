"""A resumable upload under gunicorn (the body read from its socket), broken mid-chunk the
two ways a hotel's Wi-Fi or a crash breaks it: the client's connection closed halfway
through a PATCH, and the worker killed halfway through one. Each time the client asks
where to resume (HEAD), sends the rest, and gets a document whose stored bytes are the
file it sent (the DICOM preamble zeroed) and whose hash was verified."""

from __future__ import annotations

import base64
import hashlib
import http.client
import os
import signal
import socket
import time

import pytest

from crm.documents.samples import write_sample_mri
from tests.conftest import postgres_only
from tests.factories import referral_payload
from tests.faults.processes import Gunicorn, app_env

pytestmark = [pytest.mark.faults, postgres_only]

MIB = 2**20


def _study(tmp_path, pixels: int) -> bytes:
    small = write_sample_mri(tmp_path / "study.dcm", preamble=b"MZ" + b"\x90" * 126).read_bytes()
    element = b"\xe0\x7f\x10\x00OW\x00\x00" + pixels.to_bytes(4, "little")
    return small[:-28] + element + os.urandom(pixels)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _tus(seeded, **extra: str) -> dict[str, str]:
    return seeded.agency.headers(**{"Tus-Resumable": "1.0.0", **extra})


def _start(web: Gunicorn, seeded, data: bytes) -> str:
    referral = web.request(
        "POST", "/api/v1/referrals", body=referral_payload(), headers=seeded.agency.headers()
    )
    assert referral.status == 201, referral.body
    meta = ",".join(
        f"{key} {_b64(value)}"
        for key, value in (
            ("kind", "mri_study"),
            ("filename", "study.dcm"),
            ("sha256", hashlib.sha256(data).hexdigest()),
        )
    )
    created = web.request(
        "POST",
        f"/api/v1/referrals/{referral.body['id']}/uploads",
        headers=_tus(seeded, **{"Upload-Length": str(len(data)), "Upload-Metadata": meta}),
    )
    assert created.status == 201, created.body
    return created.headers["Location"]


def _send_part_then_close(web: Gunicorn, seeded, location: str, data: bytes, sent: int) -> None:
    """A PATCH declaring the whole file, only `sent` bytes of it written, then the socket
    closed: the server sees the connection end mid-body."""
    headers = _tus(
        seeded,
        **{
            "Upload-Offset": "0",
            "Content-Type": "application/offset+octet-stream",
            "Content-Length": str(len(data)),
        },
    )
    head = f"PATCH {location} HTTP/1.1\r\nHost: 127.0.0.1\r\n" + "".join(
        f"{name}: {value}\r\n" for name, value in headers.items()
    )
    with socket.create_connection(("127.0.0.1", web.port)) as connection:
        connection.sendall(head.encode() + b"\r\n")
        connection.sendall(data[:sent])
        time.sleep(0.3)


def _offset_once_settled(web: Gunicorn, seeded, location: str) -> int:
    """HEAD until the broken request has let go (the same answer twice)."""
    last = None
    for _ in range(100):
        answer = web.request("HEAD", location, headers=_tus(seeded))
        assert answer.status == 200
        offset = int(answer.headers["Upload-Offset"])
        if offset == last:
            return offset
        last = offset
        time.sleep(0.2)
    raise AssertionError("the offset never settled")


def _finish(web: Gunicorn, seeded, location: str, data: bytes, offset: int) -> dict:
    answer = web.request(
        "PATCH",
        location,
        body=data[offset:],
        headers=_tus(
            seeded,
            **{"Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"},
        ),
        timeout=120,
    )
    assert answer.status == 200, answer.body
    return answer.body


def _stored_bytes(web: Gunicorn, seeded, document_id: int) -> bytes:
    connection = http.client.HTTPConnection("127.0.0.1", web.port, timeout=60)
    try:
        path = f"/api/v1/documents/{document_id}/content"
        connection.request("GET", path, headers=seeded.agency.headers())
        response = connection.getresponse()
        assert response.status == 200
        return response.read()
    finally:
        connection.close()


def test_a_connection_closed_mid_chunk_resumes_to_a_verified_document(seeded, tmp_path):
    data = _study(tmp_path, 6 * MIB)
    web = Gunicorn(app_env(seeded.url, tmp_path), tmp_path / "gunicorn.log").start()
    try:
        location = _start(web, seeded, data)
        sent = 2 * MIB + 12345  # past two sealed chunks, into a third
        _send_part_then_close(web, seeded, location, data, sent)
        offset = _offset_once_settled(web, seeded, location)
        assert offset == sent  # every byte that arrived is kept, the open chunk included
        document = _finish(web, seeded, location, data, offset)
        stored = b"\0" * 128 + data[128:]
        assert document["sha256"] == hashlib.sha256(stored).hexdigest()
        assert document["dicom"]["modality"] == "MR"
        assert _stored_bytes(web, seeded, document["id"]) == stored
    finally:
        web.stop()


def test_a_worker_killed_mid_chunk_resumes_to_a_verified_document(seeded, tmp_path):
    data = _study(tmp_path, 6 * MIB)
    web = Gunicorn(app_env(seeded.url, tmp_path), tmp_path / "gunicorn.log").start()
    try:
        location = _start(web, seeded, data)
        [worker] = web.worker_pids()
        headers = _tus(
            seeded,
            **{
                "Upload-Offset": "0",
                "Content-Type": "application/offset+octet-stream",
                "Content-Length": str(len(data)),
            },
        )
        head = f"PATCH {location} HTTP/1.1\r\nHost: 127.0.0.1\r\n" + "".join(
            f"{name}: {value}\r\n" for name, value in headers.items()
        )
        with socket.create_connection(("127.0.0.1", web.port)) as connection:
            connection.sendall(head.encode() + b"\r\n")
            connection.sendall(data[: 3 * MIB + 777])
            time.sleep(0.5)  # the worker is now blocked reading the rest
            os.kill(worker, signal.SIGKILL)
            time.sleep(0.3)
        web.wait_serving()
        offset = _offset_once_settled(web, seeded, location)
        # what the killed worker had sealed survives; the chunk it held in memory does not
        assert offset % MIB == 0 and 0 < offset <= 3 * MIB
        document = _finish(web, seeded, location, data, offset)
        stored = b"\0" * 128 + data[128:]
        assert document["sha256"] == hashlib.sha256(stored).hexdigest()
        assert _stored_bytes(web, seeded, document["id"]) == stored
    finally:
        web.stop()

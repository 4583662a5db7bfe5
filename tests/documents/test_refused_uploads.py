"""Hostile archives are refused (415 naming `file`), and a refused upload leaves nothing:
no temporary file, no stored blob, no document row."""

from __future__ import annotations

import io
import random
import struct
import zipfile
import zlib
from pathlib import Path

import pytest
from sqlalchemy import func, select

from crm.core import audit
from crm.core.errors import Conflict
from crm.documents.models import Document
from crm.documents.upload import storage
from tests.documents.test_documents import PDF, dicom_bytes, upload, zip_of


@pytest.fixture
def referral(factory, agency):
    return factory.referral(agency, patient={"date_of_birth": "1980-04-02"})


def _store_files() -> set[Path]:
    """Every file under the store, temp files included."""
    return {path for path in storage().root.rglob("*") if path.is_file()}


@pytest.fixture
def leaves_nothing(session):
    """Asserts, after the test, that the store and the documents table are as they were."""
    files_before = _store_files()
    rows_before = session.scalar(select(func.count(Document.id)))
    yield
    assert _store_files() == files_before
    assert not list(storage().tmp.glob("upload-*"))
    assert session.scalar(select(func.count(Document.id))) == rows_before


def _refused_naming_file(response) -> None:
    assert response.status_code == 415, response.json
    assert response.json["field"] == "file"


@pytest.mark.parametrize(
    "name",
    [
        "C:/evil.dcm",
        "c:evil.dcm",
        "C:\\Windows\\evil.dcm",
        "..\\..\\evil.dcm",
        "series\\1.dcm",
        "\\\\server\\share\\evil.dcm",
        "//server/share/evil.dcm",
        "/etc/evil.dcm",
        "series/../../evil.dcm",
        "series/\x1b[2Jevil.dcm",
    ],
)
def test_an_entry_name_that_could_land_outside_the_folder_on_any_system_is_refused(
    client, agency, referral, tmp_path, leaves_nothing, name
):
    archive = zip_of({"series/ok.dcm": dicom_bytes(tmp_path), name: dicom_bytes(tmp_path)})
    response = upload(client, agency, referral, "mri_study", archive, "study.zip")
    _refused_naming_file(response)
    assert "outside the folder" in response.json["detail"]


def test_an_ordinary_nested_entry_name_is_still_accepted(client, agency, referral, tmp_path):
    archive = zip_of({"Study 1/Series-02/IM_0001.dcm": dicom_bytes(tmp_path)})
    response = upload(client, agency, referral, "mri_study", archive, "study.zip")
    assert response.status_code == 201, response.json


def _zip_with_stream(name: str, content: bytes, stream: bytes) -> bytes:
    """A one-entry archive whose directory truthfully describes `content` (CRC, size) but
    whose deflate stream is `stream`, built by hand since zipfile only writes good ones."""
    encoded, crc, date_time = name.encode(), zlib.crc32(content), (0, 0x21)
    local = struct.pack(
        "<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, 8, *date_time, crc, len(stream), len(content),
        len(encoded), 0,
    )  # fmt: skip
    central = struct.pack(
        "<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 20, 0, 8, *date_time, crc, len(stream),
        len(content), len(encoded), 0, 0, 0, 0, 0o100644 << 16, 0,
    )  # fmt: skip
    body = local + encoded + stream
    directory = central + encoded
    end = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 1, 1, len(directory), len(body), 0)
    return body + directory + end


def _corrupt_deflate_zip(tmp_path: Path, valid_prefix: bool) -> bytes:
    """A deflated DICOM entry whose stream turns into an invalid block: at once, or only
    after the first several kilobytes (past the 132 bytes the directory check reads)."""
    filler = random.Random(8).randbytes(12_000)  # incompressible: the stream stays long
    content = dicom_bytes(tmp_path) + filler
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    prefix = compressor.compress(content[: len(content) // 2]) + compressor.flush(zlib.Z_FULL_FLUSH)
    invalid_block = b"\xff" * 64  # BFINAL=1, BTYPE=11: "invalid block type"
    stream = (prefix if valid_prefix else b"") + invalid_block + b"\0" * 256
    archive = _zip_with_stream("series/1.dcm", content, stream)
    with zipfile.ZipFile(io.BytesIO(archive)) as check, pytest.raises(zlib.error):
        check.read("series/1.dcm")  # the directory is fine, the stream is not
    return archive


@pytest.mark.parametrize("valid_prefix", [False, True], ids=["at-once", "after-the-head"])
def test_a_zip_whose_deflate_stream_is_corrupt_is_refused_naming_the_file(
    client, agency, referral, tmp_path, leaves_nothing, valid_prefix
):
    archive = _corrupt_deflate_zip(tmp_path, valid_prefix)
    response = upload(client, agency, referral, "mri_study", archive, "study.zip")
    _refused_naming_file(response)
    assert "damaged" in response.json["detail"]


def test_retrying_a_corrupt_zip_leaves_no_clean_copy_behind(client, agency, referral, tmp_path):
    archive = _corrupt_deflate_zip(tmp_path, valid_prefix=True)
    for _ in range(3):
        assert upload(client, agency, referral, "mri_study", archive).status_code == 415
    assert not list(storage().tmp.glob("*"))


def test_a_file_of_the_wrong_kind_leaves_nothing(client, agency, referral, leaves_nothing):
    _refused_naming_file(upload(client, agency, referral, "mri_study", b"junk" * 1000))


def test_a_step_failing_after_inspection_stores_no_blob(
    client, agency, referral, tmp_path, monkeypatch, leaves_nothing
):
    def failing_audit(*args, **kwargs):
        raise Conflict("the audit trail could not be written")

    monkeypatch.setattr(audit, "record", failing_audit)  # the upload's last step before storing
    response = upload(client, agency, referral, "passport", PDF, "passport.pdf")
    assert response.status_code == 409

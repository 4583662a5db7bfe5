"""The streaming path: hashing temp files, in-stream preamble zeroing, size caps while the
body arrives, damaged or hollow DICOM refused, idempotent uploads, checks before the body."""

import errno
import hashlib
import io
import os
import stat
import zipfile

import pytest
from sqlalchemy import func, select

from crm.core.audit import AuditEvent
from crm.documents import upload as upload_module
from crm.documents.encryption import MAGIC
from crm.documents.models import Document
from crm.documents.parts import SealedPart
from crm.documents.samples import write_sample_mri
from crm.documents.upload import FileTooLarge, Received, SealingTempFile, storage
from crm.referrals.models import StageTransition
from tests.documents.test_documents import PDF, dicom_bytes, upload, zip_of

API = "/api/v1"
POLYGLOT = b"MZ\x90\x00" + b"payload".ljust(124, b"!")


@pytest.fixture
def referral(factory, agency):
    return factory.referral(agency, patient={"date_of_birth": "1980-04-02"})


def _sanitised(data: bytes) -> bytes:
    return b"\0" * 128 + data[128:]


@pytest.fixture
def in_app(app):
    with app.app_context():
        yield


def _sealing(path, limit=10**6, chunk_size=1024):
    return SealingTempFile(path.open("w+b"), limit, storage().keyring, chunk_size)


def _plaintext(taken) -> bytes:
    part = SealedPart(taken.path, taken.size, taken.header, taken.data_key)
    with part.reader() as reader:
        return reader.read()


def test_a_polyglot_preamble_is_zeroed_as_it_streams_even_split_across_chunks(in_app, tmp_path):
    data = write_sample_mri(tmp_path / "p.dcm", preamble=POLYGLOT).read_bytes()
    temp = _sealing(tmp_path / "temp")
    for start in range(0, len(data), 50):
        temp.write(data[start : start + 50])
    temp.seek(0)
    received = temp.received()
    assert _plaintext(received) == _sanitised(data)
    assert received.sha256 == hashlib.sha256(_sanitised(data)).hexdigest()
    assert received.size == len(data)


def test_a_streamed_file_rests_on_the_disk_only_sealed(in_app, tmp_path):
    data = write_sample_mri(tmp_path / "p.dcm", preamble=POLYGLOT).read_bytes()
    data += os.urandom(6000)
    temp = _sealing(tmp_path / "temp")
    temp.write(data[:3000])
    temp.write(data[3000:])
    on_disk = (tmp_path / "temp").read_bytes()  # while the part is still open
    received = temp.received()
    on_disk_after = received.path.read_bytes()
    assert on_disk.startswith(MAGIC) and on_disk_after.startswith(MAGIC)
    for blob in (on_disk, on_disk_after):
        assert b"payload" not in blob
        assert data[-3000:-2900] not in blob  # no run of the plaintext


@pytest.mark.parametrize("size", [1, 1023, 1024, 1025, 2048, 5000])
def test_a_streamed_file_of_any_length_reads_back_whole(in_app, tmp_path, size):
    """The last chunk is sealed as the last whether the file ends inside a chunk or on its
    boundary (it is sealed only once a byte past it arrives, or the part ends)."""
    data = b"%PDF" + os.urandom(size)[4:] if size >= 4 else os.urandom(size)
    temp = _sealing(tmp_path / "temp")
    for start in range(0, len(data), 700):
        temp.write(data[start : start + 700])
    received = temp.received()
    assert _plaintext(received) == data
    assert received.sha256 == hashlib.sha256(data).hexdigest()


def test_a_file_that_is_not_dicom_streams_through_unchanged(in_app, tmp_path):
    data = b"MZ" + os.urandom(300)
    temp = _sealing(tmp_path / "temp")
    temp.write(data)
    received = temp.received()
    assert _plaintext(received) == data
    assert received.sha256 == hashlib.sha256(data).hexdigest()


def test_the_stream_refuses_bytes_past_its_limit(in_app, tmp_path):
    temp = _sealing(tmp_path / "temp", limit=1000)
    temp.write(b"x" * 1000)
    with pytest.raises(FileTooLarge):
        temp.write(b"x")
    temp.close()


def test_a_file_already_on_disk_is_sanitised_and_hashed_in_place(tmp_path):
    path = write_sample_mri(tmp_path / "disk.dcm", preamble=POLYGLOT)
    original = path.read_bytes()
    received = Received.of_path(path)
    assert path.read_bytes() == _sanitised(original)
    assert received.sha256 == hashlib.sha256(_sanitised(original)).hexdigest()


def test_an_upload_larger_than_any_kind_allows_is_413_while_streaming(
    app, client, agency, referral, monkeypatch
):
    monkeypatch.setitem(app.config["CRM"], "DOCUMENT_MAX_MB_MRI", 1)
    monkeypatch.setitem(app.config["CRM"], "DOCUMENT_MAX_MB_OTHER", 1)
    response = upload(client, agency, referral, "mri_study", PDF + b"\0" * 2**20, "big.pdf")
    assert response.status_code == 413
    assert response.mimetype == "application/problem+json"
    assert response.json["field"] == "file"
    assert not list(storage().tmp.glob("upload-*"))


def test_a_declared_length_over_the_limit_is_413_before_the_body_is_read(
    app, client, agency, referral, monkeypatch
):
    monkeypatch.setitem(app.config["CRM"], "DOCUMENT_MAX_MB_MRI", 1)
    monkeypatch.setitem(app.config["CRM"], "DOCUMENT_MAX_MB_OTHER", 1)
    body = b'--b\r\nContent-Disposition: form-data; name="kind"\r\n\r\nmri_study\r\n--b--\r\n'
    response = client.post(
        f"{API}/referrals/{referral.id}/documents",
        input_stream=io.BytesIO(body),
        headers=agency.headers(),
        content_type="multipart/form-data; boundary=b",
        environ_overrides={"CONTENT_LENGTH": str(10 * 2**20)},  # what the client declares
    )
    assert response.status_code == 413
    assert response.mimetype == "application/problem+json"


def test_another_agencys_referral_is_404_before_any_of_the_body_is_stored(
    client, factory, referral, monkeypatch, tmp_path
):
    def never(*_args, **_kwargs):
        raise AssertionError("the body was parsed")

    monkeypatch.setattr(upload_module, "largest_upload", never)
    other = factory.agency()
    response = upload(client, other, referral, "mri_study", dicom_bytes(tmp_path))
    assert response.status_code == 404


@pytest.mark.parametrize(
    "data",
    [
        b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00UI\xff\xff" + b"garbage" * 50,
        b"\0" * 128 + b"DICM",
    ],
)
def test_the_magic_without_a_dicom_object_behind_it_is_refused(client, agency, referral, data):
    response = upload(client, agency, referral, "mri_study", data, "fake.dcm")
    assert response.status_code == 415
    assert response.json["field"] == "file"
    assert referral.stage == "enquiry"


def test_a_hollow_dicom_inside_a_zip_is_refused_naming_the_entry(client, agency, referral):
    archive = zip_of({"series/1.dcm": b"\0" * 128 + b"DICM" + b"junk" * 100})
    response = upload(client, agency, referral, "mri_study", archive, "study.zip")
    assert response.status_code == 415
    assert "series/1.dcm" in response.json["detail"]


def test_a_zip_whose_entries_fail_their_crc_is_refused_not_a_server_error(
    client, agency, referral, tmp_path
):
    data = dicom_bytes(tmp_path)
    archive = bytearray(zip_of({"1.dcm": data}, zipfile.ZIP_STORED))
    archive[archive.index(data) + len(data) - 1] ^= 0xFF  # the last byte of the entry
    response = upload(client, agency, referral, "mri_study", bytes(archive), "study.zip")
    assert response.status_code == 415
    assert "damaged" in response.json["detail"]


def test_a_symbolic_link_in_a_zip_is_refused(client, agency, referral, tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        link = zipfile.ZipInfo("series/link.dcm")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, dicom_bytes(tmp_path))
    response = upload(client, agency, referral, "mri_study", buffer.getvalue(), "study.zip")
    assert response.status_code == 415
    assert "symbolic link" in response.json["detail"]


def test_stored_zip_entries_stay_stored_when_the_preambles_are_zeroed(
    client, agency, referral, tmp_path
):
    slices = {f"s/{n}.dcm": dicom_bytes(tmp_path, f"{n}.dcm", preamble=POLYGLOT) for n in (1, 2)}
    body = upload(
        client, agency, referral, "mri_study", zip_of(slices, zipfile.ZIP_STORED), "s.zip"
    ).json
    with zipfile.ZipFile(io.BytesIO(storage().read_bytes(body["sha256"]))) as archive:
        for info in archive.infolist():
            assert info.compress_type == zipfile.ZIP_STORED
            assert archive.read(info) == _sanitised(slices[info.filename])


def test_a_multi_frame_study_counts_its_frames_as_images(client, agency, referral, tmp_path):
    path = write_sample_mri(tmp_path / "multi.dcm")
    import pydicom

    dataset = pydicom.dcmread(path)
    dataset.NumberOfFrames = 3
    dataset.PixelData = bytes(16 * 3)
    dataset.save_as(path)
    body = upload(client, agency, referral, "mri_study", path.read_bytes(), "multi.dcm").json
    assert body["dicom"]["images"] == 3


def _idempotent_upload(client, caller, referral, data, key):
    return client.post(
        f"{API}/referrals/{referral.id}/documents",
        data={"kind": "passport", "file": (io.BytesIO(data), "passport.pdf")},
        headers=caller.headers(**{"Idempotency-Key": key}),
        content_type="multipart/form-data",
    )


def test_a_retried_upload_with_its_idempotency_key_is_replayed_not_stored_twice(
    client, session, agency, referral
):
    first = _idempotent_upload(client, agency, referral, PDF, "upload-1")
    again = _idempotent_upload(client, agency, referral, PDF, "upload-1")
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json == first.json
    count = select(func.count(Document.id)).where(Document.referral_id == referral.id)
    assert session.scalar(count) == 1


def test_the_same_key_with_another_file_is_refused(client, agency, referral):
    assert _idempotent_upload(client, agency, referral, PDF, "upload-2").status_code == 201
    other = _idempotent_upload(client, agency, referral, PDF + b"%another", "upload-2")
    assert other.status_code == 422
    assert other.json["type"].endswith("/idempotency-key-reused")


def test_an_mri_for_an_enquiry_moves_it_straight_to_review(
    client, session, agency, referral, tmp_path
):
    assert upload(client, agency, referral, "mri_study", dicom_bytes(tmp_path)).status_code == 201
    moves = session.scalars(
        select(StageTransition.to_stage)
        .where(StageTransition.referral_id == referral.id)
        .order_by(StageTransition.id)
    ).all()
    assert moves == ["enquiry", "mri_review"]


def test_a_further_study_in_review_leaves_the_stage_alone(
    client, session, factory, agency, referral, tmp_path
):
    specialist = factory.staff("specialist")
    upload(client, agency, referral, "mri_study", dicom_bytes(tmp_path, "a.dcm"))
    second = upload(client, specialist, referral, "mri_study", dicom_bytes(tmp_path, "b.dcm"))
    assert second.status_code == 201
    assert second.json["uploaded_by"] == specialist.actor.label
    session.refresh(referral)
    assert referral.stage == "mri_review"


def test_the_list_shows_the_metadata_and_is_audited(client, session, agency, referral, tmp_path):
    upload(client, agency, referral, "mri_study", dicom_bytes(tmp_path), "lumbar.dcm")
    upload(client, agency, referral, "passport", PDF, "passport.pdf")
    listing = client.get(f"{API}/referrals/{referral.id}/documents", headers=agency.headers())
    assert listing.status_code == 200
    assert [(d["kind"], d["filename"]) for d in listing.json] == [
        ("mri_study", "lumbar.dcm"),
        ("passport", "passport.pdf"),
    ]
    assert listing.json[0]["dicom"]["modality"] == "MR"
    assert listing.json[1]["dicom"] == {}
    audited = select(AuditEvent).where(
        AuditEvent.action == "document.list", AuditEvent.referral_id == referral.id
    )
    assert session.scalar(audited) is not None


def test_a_streamed_file_is_written_back_while_it_arrives(in_app, tmp_path, monkeypatch):
    synced = []
    monkeypatch.setattr(upload_module, "FLUSH_EVERY", 4096)
    monkeypatch.setattr(os, "fdatasync", synced.append)
    data = b"%PDF" + os.urandom(40_000)
    temp = _sealing(tmp_path / "temp")
    for start in range(0, len(data), 1000):
        temp.write(data[start : start + 1000])
    assert synced  # before the part ended
    assert _plaintext(temp.received()) == data


def test_a_write_back_failure_fails_the_streamed_file(in_app, tmp_path, monkeypatch):
    def failing(_fd):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(upload_module, "FLUSH_EVERY", 4096)
    monkeypatch.setattr(os, "fdatasync", failing)
    temp = _sealing(tmp_path / "temp")
    with pytest.raises(OSError, match="Input/output"):
        for _ in range(40):
            temp.write(os.urandom(1000))
        temp.received()
    temp.close()

"""Upload benchmark: a 200 MB MRI study through the real app against copying it to disk.

    .venv/bin/python bench/upload.py [--megabytes 200] [--rounds 3]

The app runs under gunicorn on 127.0.0.1 against a scratch PostgreSQL database (from
CRM_BENCH_DATABASE_URL, as bench/api.py); a client in this process streams one DICOM
file of the given size as multipart/form-data with http.client, never holding it whole.
The baseline copies the same bytes to disk with shutil.copyfileobj in the same run.
Printed: the throughput ratio (goal >= 0.5x) and how much the serving worker's memory
grew (peak RSS, goal < 50 MB).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

sys.path.insert(0, str(Path(__file__).resolve().parent))
import api as common

CHUNK = 1024 * 1024
BOUNDARY = "crm-bench-" + uuid.uuid4().hex


def _big_dicom(path: Path, megabytes: int) -> Path:
    """A valid DICOM whose pixel data (written by pydicom from bytes) is `megabytes` long."""
    side = 4096
    frames = max(1, megabytes * 1024 * 1024 // (side * side))
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    dataset.SOPClassUID, dataset.SOPInstanceUID = MRImageStorage, generate_uid()
    dataset.Modality, dataset.BodyPartExamined = "MR", "LSPINE"
    dataset.PatientName = "Weber^Jonas"
    dataset.Rows = dataset.Columns = side
    dataset.NumberOfFrames = frames
    dataset.BitsAllocated = dataset.BitsStored = 8
    dataset.HighBit, dataset.SamplesPerPixel, dataset.PixelRepresentation = 7, 1, 0
    dataset.PhotometricInterpretation = "MONOCHROME2"
    dataset.PixelData = os.urandom(side * side * frames)
    dataset.save_as(path, enforce_file_format=True)
    return path


def _submit_referral(port: int, key: str) -> int:
    connection = http.client.HTTPConnection(common.HOST, port, timeout=60)
    body = common._submit_body(f"UP-{uuid.uuid4().hex[:8]}")
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    connection.request("POST", "/api/v1/referrals", body=body, headers=headers)
    response = connection.getresponse()
    payload = json.loads(response.read())
    if response.status != 201:
        raise RuntimeError(f"submit failed: {response.status} {payload}")
    return payload["id"]


def _stream_upload(port: int, key: str, referral_id: int, path: Path) -> float:
    """Seconds to send the file as multipart and get the 201 back."""
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="kind"\r\n\r\nmri_study\r\n'
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="{path.name}"\r\nContent-Type: application/dicom\r\n\r\n'
    ).encode()
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()
    length = len(head) + path.stat().st_size + len(tail)
    connection = http.client.HTTPConnection(common.HOST, port, timeout=600)
    started = time.perf_counter()
    connection.putrequest("POST", f"/api/v1/referrals/{referral_id}/documents")
    connection.putheader("Authorization", f"Bearer {key}")
    connection.putheader("Content-Type", f"multipart/form-data; boundary={BOUNDARY}")
    connection.putheader("Content-Length", str(length))
    connection.endheaders()
    connection.send(head)
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            connection.send(chunk)
    connection.send(tail)
    response = connection.getresponse()
    body = response.read()
    elapsed = time.perf_counter() - started
    if response.status != 201:
        raise RuntimeError(f"upload failed: {response.status} {body[:500]!r}")
    return elapsed


def _copy(path: Path, directory: Path) -> float:
    target = directory / f"copy-{uuid.uuid4().hex}"
    started = time.perf_counter()
    with path.open("rb") as source, target.open("wb") as sink:
        shutil.copyfileobj(source, sink, CHUNK)
        sink.flush()
        os.fsync(sink.fileno())
    elapsed = time.perf_counter() - started
    target.unlink()
    return elapsed


def _workers(master_pid: int) -> list[int]:
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    return [int(pid) for pid in children]


def _kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    url = os.environ.get("CRM_BENCH_DATABASE_URL", common.DEFAULT_URL)
    dbs = common.Databases(url)
    work = Path(tempfile.mkdtemp(prefix="crm-bench-upload-"))
    servers = common.Servers(work)
    try:
        name = f"{dbs.prefix}_{uuid.uuid4().hex[:8]}_upload"
        credentials = common.prepare_template(dbs, name)
        env = common._app_env(dbs.sqlalchemy_url(name))
        env["CRM_DOCUMENTS_DIR"] = str(work / "documents")
        server = servers.start("app", "wsgi:app", env, common.ROOT)
        study = _big_dicom(work / "study.dcm", args.megabytes)
        size_mb = study.stat().st_size / 2**20
        baseline = [_copy(study, work) for _ in range(args.rounds)]
        before = {pid: _kb(pid, "VmRSS") for pid in _workers(server.process.pid)}
        uploads = []
        for _ in range(args.rounds):
            referral_id = _submit_referral(server.port, credentials.agency_key)
            uploads.append(_stream_upload(server.port, credentials.agency_key, referral_id, study))
        growth_mb = max((_kb(pid, "VmHWM") - rss) / 1024 for pid, rss in before.items())
        copy_s, upload_s = statistics.median(baseline), statistics.median(uploads)
        ratio = copy_s / upload_s
        verdict = "meets" if ratio >= 0.5 else "MISSES"
        memory = "meets" if growth_mb < 50 else "MISSES"
        print(
            f"upload throughput ratio: {ratio:.2f}x (app {size_mb / upload_s:.0f} MB/s, "
            f"disk copy {size_mb / copy_s:.0f} MB/s; {size_mb:.0f} MB, median of "
            f"{args.rounds}) - {verdict} goal >= 0.5x"
        )
        print(
            f"worker memory growth: {growth_mb:.1f} MB peak RSS over the uploads - "
            f"{memory} goal < 50 MB"
        )
        return 0
    finally:
        servers.stop_all()
        dbs.drop_all()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

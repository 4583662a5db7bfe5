"""Upload benchmark: a 200 MB MRI study streamed to the app against a plain disk copy.

    .venv/bin/python bench/upload.py              # about a minute on 2 cores
    .venv/bin/python bench/upload.py --zip        # a ZIP of DICOM slices instead

What it does, all on 127.0.0.1, in a scratch PostgreSQL database it creates and drops
(named after the database in CRM_BENCH_DATABASE_URL, default
postgresql+psycopg://postgres@127.0.0.1:5432/crm_bench, plus a random suffix):

1. Migrates the database, creates an agency with an API key, starts the app under
   gunicorn (one sync worker) with a scratch documents directory, submits a referral.
2. Writes a 200 MiB DICOM (a multi-frame MR with a non-zero preamble, so the app has a
   preamble to zero) or, with --zip, a stored ZIP of 400 DICOM slices of 512 KiB.
3. In alternating rounds, from a separate client process, uploads the file
   (a) as multipart/form-data in one request (POST /api/v1/referrals/{id}/documents,
   kind=mri_study) with a streaming body (an http.client body object that reads the file
   in 1 MiB blocks and sends a Content-Length, nothing held in memory), and
   (b) resumably (tus 1.0.0: POST /api/v1/referrals/{id}/uploads declaring the length and
   the SHA-256, then PATCH chunks of --chunk-mb to its Location, each a streamed body);
   the client hashes the file before the clock starts, as any client must before it
   declares the hash. Then, in this process, copies the same bytes to a file in the same
   directory with shutil.copyfileobj plus fsync (the store fsyncs before its rename
   too). A few bytes of the file change before each upload so every upload is new
   content (the store keeps identical content once).
4. Reads the worker's CPU time (user + system, every thread) around each upload, and
   VmRSS and VmHWM of the gunicorn worker from /proc before the first measured
   upload (after a small warm-up upload) and after the last.

Prints, for each path, `... throughput ratio: X.XXx (goal >= 0.4x)` (median app MB/s
over median copy MB/s of the same run) and the worker's memory growth over all the
uploads (goal < 50 MB). The server is stopped and the
database dropped on the way out, errors included; exit status 0 when the run completes.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import json
import multiprocessing
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from contextlib import suppress
from pathlib import Path

from _common import DEFAULT_URL, HOST, ROOT, Databases, bin_path, free_port
from api import _app_env, _submit_body, prepare_template
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

RATIO_GOAL = 0.4
RSS_GOAL_MB = 50
MIB = 2**20
FRAME = 512 * 512 * 2  # one 512x512 16-bit slice
BLOCK = MIB


# --------------------------------------------------------------------------- the study


def _header(path: Path, frames: int, preamble: bytes) -> None:
    """A valid MR header; PixelData is appended afterwards, streamed."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = FileDataset(str(path), {}, file_meta=meta, preamble=preamble)
    dataset.SOPClassUID = MRImageStorage
    dataset.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    dataset.Modality = "MR"
    dataset.BodyPartExamined = "LSPINE"
    dataset.StudyDate = "20261101"
    dataset.PatientName = "Weber^Jonas"
    dataset.PatientBirthDate = "19800402"
    dataset.Rows = dataset.Columns = 512
    dataset.NumberOfFrames = frames
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit = 16, 12, 11
    dataset.SamplesPerPixel = 1
    dataset.PhotometricInterpretation = "MONOCHROME2"
    dataset.PixelRepresentation = 0
    dataset.save_as(path, enforce_file_format=True)


def _append_pixels(handle, frames: int) -> None:
    size = frames * FRAME
    handle.write(b"\xe0\x7f\x10\x00OW\x00\x00" + size.to_bytes(4, "little"))
    block = os.urandom(BLOCK)
    for _ in range(size // BLOCK):
        handle.write(block)
    handle.write(block[: size % BLOCK])


def write_dicom(path: Path, frames: int) -> None:
    _header(path, frames, b"MZ" + b"\x90" * 126)  # a preamble the app must zero
    with path.open("ab") as handle:
        _append_pixels(handle, frames)


def write_zip(path: Path, frames: int, work: Path) -> None:
    slice_path = work / "slice.dcm"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for n in range(frames):
            _header(slice_path, 1, b"\0" * 128)
            with slice_path.open("ab") as handle:
                _append_pixels(handle, 1)
            archive.write(slice_path, f"series1/IM{n:05d}.dcm")
    slice_path.unlink()


def make_unique(path: Path, round_no: int) -> None:
    """New content each round (the last bytes are pixel data, or the ZIP's last slice is
    not touched: its comment changes instead)."""
    if path.suffix == ".zip":
        with zipfile.ZipFile(path, "a") as archive:
            archive.comment = f"round {round_no} {secrets.token_hex(4)}".encode()
        return
    with path.open("r+b") as handle:
        handle.seek(-8, os.SEEK_END)
        handle.write(secrets.token_bytes(8))


# --------------------------------------------------------------------------- the client


class MultipartBody:
    """multipart/form-data read in blocks: the fields, the file, the closing boundary."""

    def __init__(self, path: Path, fields: dict[str, str], filename: str) -> None:
        self.boundary = "bench" + secrets.token_hex(12)
        head = "".join(
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
            + f"{value}\r\n"
            for name, value in fields.items()
        )
        head += (
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
        )
        self._head = head.encode()
        self._tail = f"\r\n--{self.boundary}--\r\n".encode()
        self._file = path.open("rb")
        self.length = len(self._head) + path.stat().st_size + len(self._tail)
        self._stage = 0

    def read(self, size: int = -1) -> bytes:
        if self._stage == 0:
            self._stage = 1
            return self._head
        if self._stage == 1:
            if chunk := self._file.read(size if size > 0 else BLOCK):
                return chunk
            self._stage = 2
            self._file.close()
            return self._tail
        return b""


def upload_once(port: int, key: str, referral_id: int, path: str, results) -> None:
    """Runs in its own process: one streamed upload; puts (seconds, status, body)."""
    body = MultipartBody(Path(path), {"kind": "mri_study"}, Path(path).name)
    connection = http.client.HTTPConnection(HOST, port, timeout=600, blocksize=BLOCK)
    started = time.perf_counter()
    connection.request(
        "POST",
        f"/api/v1/referrals/{referral_id}/documents",
        body=body,
        headers={
            "Authorization": f"Bearer {key}",
            "Content-Type": f"multipart/form-data; boundary={body.boundary}",
            "Content-Length": str(body.length),
        },
    )
    response = connection.getresponse()
    text = response.read().decode(errors="replace")
    results.put((time.perf_counter() - started, response.status, text[:500]))
    connection.close()


class FileSlice:
    """`length` bytes of a file from `start`, read in blocks (an http.client body)."""

    def __init__(self, path: Path, start: int, length: int) -> None:
        self._file = path.open("rb")
        self._file.seek(start)
        self.left = length

    def read(self, size: int = -1) -> bytes:
        if self.left <= 0:
            self._file.close()
            return b""
        chunk = self._file.read(min(self.left, size if size > 0 else BLOCK))
        self.left -= len(chunk)
        return chunk


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(4 * MIB):
            digest.update(block)
    return digest.hexdigest()


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def resumable_once(port: int, key: str, referral_id: int, path: str, chunk: int, results) -> None:
    """Runs in its own process: one tus upload in chunks; puts (seconds, status, body)."""
    source = Path(path)
    size, digest = source.stat().st_size, sha256_of(source)
    auth = {"Authorization": f"Bearer {key}", "Tus-Resumable": "1.0.0"}
    meta = f"kind {_b64('mri_study')},filename {_b64(source.name)},sha256 {_b64(digest)}"
    connection = http.client.HTTPConnection(HOST, port, timeout=600, blocksize=BLOCK)
    started = time.perf_counter()
    connection.request(
        "POST",
        f"/api/v1/referrals/{referral_id}/uploads",
        headers={**auth, "Upload-Length": str(size), "Upload-Metadata": meta},
    )
    created = connection.getresponse()
    created.read()
    if created.status != 201:
        results.put((0.0, created.status, "creation refused"))
        return
    location, offset, status, text = created.getheader("Location"), 0, 0, ""
    while offset < size:
        count = min(chunk, size - offset)
        connection.close()  # gunicorn's sync workers close after each request
        connection = http.client.HTTPConnection(HOST, port, timeout=600, blocksize=BLOCK)
        connection.request(
            "PATCH",
            location,
            body=FileSlice(source, offset, count),
            headers={
                **auth,
                "Upload-Offset": str(offset),
                "Content-Type": "application/offset+octet-stream",
                "Content-Length": str(count),
            },
        )
        response = connection.getresponse()
        status, text = response.status, response.read().decode(errors="replace")
        if status not in (200, 204):
            break
        offset = int(response.getheader("Upload-Offset"))
    seconds = time.perf_counter() - started
    results.put((seconds, 201 if status == 200 else status, text[:500]))
    connection.close()


def timed_upload(port: int, key: str, referral_id: int, path: Path, chunk: int = 0) -> float:
    """One upload from a separate process: multipart in one request, or with `chunk`,
    resumable (tus) in chunks of that many bytes."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    if chunk:
        target, args = resumable_once, (port, key, referral_id, str(path), chunk, results)
    else:
        target, args = upload_once, (port, key, referral_id, str(path), results)
    process = context.Process(target=target, args=args)
    process.start()
    seconds, status, text = results.get(timeout=900)
    process.join(timeout=30)
    if status != 201:
        raise RuntimeError(f"upload answered {status}: {text}")
    return seconds


def timed_copy(source: Path, directory: Path) -> float:
    target = directory / f"copy-{secrets.token_hex(4)}"
    started = time.perf_counter()
    with source.open("rb") as reader, target.open("wb") as writer:
        shutil.copyfileobj(reader, writer, BLOCK)
        writer.flush()
        os.fsync(writer.fileno())
    seconds = time.perf_counter() - started
    target.unlink()
    return seconds


# --------------------------------------------------------------------------- the server


def start_app(env: dict[str, str], log_path: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    command = [
        bin_path("gunicorn"),
        *("--workers", "1", "--bind", f"{HOST}:{port}", "--chdir", str(ROOT)),
        *("--log-level", "warning", "--timeout", "300", "wsgi:app"),
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited at start:\n{log_path.read_text()[-2000:]}")
        with suppress(OSError, http.client.HTTPException):
            connection = http.client.HTTPConnection(HOST, port, timeout=2)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                connection.close()
                return process, port
        time.sleep(0.2)
    raise RuntimeError(f"gunicorn not ready:\n{log_path.read_text()[-2000:]}")


def stop_app(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)  # its own session: only what it started
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


def worker_pid(master: int) -> int:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    if len(children) != 1:
        raise RuntimeError(f"expected one gunicorn worker under {master}, found {children}")
    return int(children[0])


def cpu_seconds(pid: int) -> float:
    """The worker's CPU time so far, user + system, all its threads (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_mb(pid: int) -> dict[str, float]:
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in {"VmRSS", "VmHWM"}:
            values[name] = int(rest.split()[0]) / 1024
    return values


def _post_json(port: int, path: str, key: str, body: bytes) -> dict:
    connection = http.client.HTTPConnection(HOST, port, timeout=30)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    connection.request("POST", path, body=body, headers=headers)
    response = connection.getresponse()
    payload = json.loads(response.read())
    connection.close()
    if response.status >= 300:
        raise RuntimeError(f"POST {path} answered {response.status}: {payload}")
    return payload


# --------------------------------------------------------------------------- the run


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200, help="size of the study, MiB")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds of each")
    parser.add_argument("--zip", action="store_true", help="a ZIP of DICOM slices")
    parser.add_argument(
        "--chunk-mb", type=int, default=64, help="the resumable path's chunk size, MiB"
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    return parser.parse_args(argv)


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _exit_on_signal)
    dbs = Databases(os.environ.get("CRM_BENCH_DATABASE_URL", DEFAULT_URL))
    name = f"{dbs.prefix}_{secrets.token_hex(3)}_upload"
    work = Path(tempfile.mkdtemp(prefix="crm-bench-upload-"))
    process = None
    try:
        print(f"scratch database {name}: migrate, catalogue, agency, staff")
        creds = prepare_template(dbs, name)
        documents = work / "documents"
        env = {**_app_env(dbs.sqlalchemy_url(name)), "CRM_DOCUMENTS_DIR": str(documents)}
        process, port = start_app(env, work / "gunicorn.log")
        referral = _post_json(port, "/api/v1/referrals", creds.agency_key, _submit_body("UP-1"))
        frames = args.mb * MIB // FRAME
        study = work / ("study.zip" if args.zip else "study.dcm")
        print(f"writing a {args.mb} MiB {'ZIP of DICOM slices' if args.zip else 'DICOM'}")
        write_zip(study, frames, work) if args.zip else write_dicom(study, frames)
        size = study.stat().st_size
        warm = work / "warm.dcm"
        write_dicom(warm, 1)
        timed_upload(port, creds.agency_key, referral["id"], warm)
        worker = worker_pid(process.pid)
        before = memory_mb(worker)
        uploads, chunked, copies = [], [], []
        cpu: dict[str, list[float]] = {"multipart": [], "resumable": []}
        for round_no in range(args.rounds):
            make_unique(study, 2 * round_no)
            spent = cpu_seconds(worker)
            uploads.append(timed_upload(port, creds.agency_key, referral["id"], study))
            cpu["multipart"].append(cpu_seconds(worker) - spent)
            make_unique(study, 2 * round_no + 1)
            spent = cpu_seconds(worker)
            chunked.append(
                timed_upload(port, creds.agency_key, referral["id"], study, args.chunk_mb * MIB)
            )
            cpu["resumable"].append(cpu_seconds(worker) - spent)
            copies.append(timed_copy(study, documents))
            print(
                f"round {round_no + 1}: multipart {size / MIB / uploads[-1]:7.1f} MiB/s, "
                f"resumable {size / MIB / chunked[-1]:7.1f} MiB/s, "
                f"copy {size / MIB / copies[-1]:7.1f} MiB/s"
            )
        after = memory_mb(worker)
        _summary(size, {"multipart": uploads, "resumable": chunked}, copies, before, after)
        for name, seconds in cpu.items():
            print(
                f"{name}: worker CPU {statistics.median(seconds):.2f} s per upload (median; "
                f"{', '.join(f'{s:.2f}' for s in seconds)})"
            )
        print(f"resumable chunks of {args.chunk_mb} MiB")
        return 0
    finally:
        if process is not None:
            stop_app(process)
        if args.keep:
            print(f"kept database {name}, files in {work}")
        else:
            dbs.drop_all()
            shutil.rmtree(work, ignore_errors=True)


def _summary(size, paths: dict[str, list[float]], copies, before, after) -> None:
    copy_rate = size / MIB / statistics.median(copies)
    rss_growth = after["VmRSS"] - before["VmRSS"]
    peak_growth = after["VmHWM"] - before["VmRSS"]
    print(f"file: {size / MIB:.0f} MiB; median copy {copy_rate:.1f} MiB/s")
    for name, seconds in paths.items():
        rate = size / MIB / statistics.median(seconds)
        print(
            f"{name} upload: median {rate:.1f} MiB/s; throughput ratio: "
            f"{rate / copy_rate:.2f}x (goal >= {RATIO_GOAL}x)"
        )
    print(
        f"worker RSS: {before['VmRSS']:.1f} MB before, {after['VmRSS']:.1f} MB after "
        f"(growth {rss_growth:+.1f} MB); peak (VmHWM) {after['VmHWM']:.1f} MB, "
        f"{peak_growth:+.1f} MB over the start (goal < {RSS_GOAL_MB} MB)"
    )
    print(
        f"1-min load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; "
        "other work on the machine skews the ratio"
    )


if __name__ == "__main__":
    sys.exit(main())

"""Streaming multipart uploads: file parts go straight to a sealed temp file in the store.

The multipart parser (`crm.documents.multipart`) hands each file part's bytes to the
stream our request class supplies: a `SealingTempFile`, which counts them
(refusing past the largest size any kind may have), zeroes a DICOM preamble on the way
through (CVE-2019-11687), hashes them (SHA-256, the storage key) and writes them to a
temp file beside the store already encrypted in the stored blob's format, so neither a
polyglot's payload nor any plaintext reaches the disk, and storing the file is a link.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import Flask, Request, current_app, request

from crm.core.errors import DomainError
from crm.documents.encryption import TAG, Header, Keyring
from crm.documents.multipart import StreamingFormDataParser
from crm.documents.sniff import DICOM_MAGIC_OFFSET, is_dicom
from crm.documents.storage import CHUNK, EncryptedStore, current_storage

_HEAD = DICOM_MAGIC_OFFSET + 4
HEAD_BYTES = _HEAD  # what must have arrived before a DICOM preamble can be judged


class FileTooLarge(DomainError):
    status, code, title = 413, "file-too-large", "The file is larger than allowed"


def storage() -> EncryptedStore:
    """The configured store (local or S3), encrypting with the configured master keys."""
    return current_storage()


def largest_upload() -> int:
    """Bytes the largest kind may have: the cap while streaming, before the kind is known."""
    settings = current_app.config["CRM"]
    return max(settings["DOCUMENT_MAX_MB_MRI"], settings["DOCUMENT_MAX_MB_OTHER"]) * 2**20


def sanitise_head(head: bytes) -> bytes:
    """A DICOM preamble is free-form and can hold an executable header: zero it."""
    return b"\0" * DICOM_MAGIC_OFFSET + head[DICOM_MAGIC_OFFSET:] if is_dicom(head) else head


@dataclass(frozen=True)
class Received:
    """A file taken in whole: where it is, its SHA-256 and its size."""

    path: Path
    sha256: str
    size: int

    @classmethod
    def of_path(cls, path: Path) -> Received:
        """A file already on disk (the demo, scripts): sanitised in place, then hashed."""
        with path.open("r+b") as handle:
            head = handle.read(_HEAD)
            if (clean := sanitise_head(head)) != head:
                handle.seek(0)
                handle.write(clean)
        digest, size = hashlib.sha256(), 0
        with path.open("rb") as handle:
            while chunk := handle.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
        return cls(path, digest.hexdigest(), size)


class SealingTempFile:
    """The stream a file part is written to: counted, preamble zeroed, hashed (SHA-256 of
    the bytes as stored) and sealed on disk in the stored blob's own format as it arrives
    (`crm.documents.encryption`: a header with a fresh data key, then AES-256-GCM chunks),
    so no plaintext of an upload rests on the disk and keeping it is a link, not a second
    pass (the resumable part's scheme, `parts.SealedPart`).

    The bytes fill one chunk buffer while the chunk before is hashed on one of this
    worker's upload threads and sealed and written on the other (hashlib and AES-GCM let
    go of the GIL), so reading the body and the work on its bytes share the cores. A
    chunk is sealed once a byte past it arrives (only the last chunk's nonce says it is
    the last) or when the part ends (Werkzeug seeks to 0 then; `received` or `sha256`
    end it too). Written back as it is written (`EarlyFlush`). Memory: three chunks
    (two filling in turn, one sealed)."""

    def __init__(self, raw: IO[bytes], limit: int, keyring: Keyring, chunk_size: int) -> None:
        if chunk_size < _HEAD:
            raise ValueError("a chunk must hold a DICOM preamble")
        self._raw = raw
        self.name = raw.name
        self.limit = limit
        self.size = 0
        self._data_key, sealed = keyring.new_data_key()
        self.header = Header.new(sealed, chunk_size)
        self._aead = AESGCM(self._data_key)
        self._digest = hashlib.sha256()
        self._buffers = (bytearray(chunk_size), bytearray(chunk_size))
        self._out = bytearray(chunk_size + TAG)
        self._current = 0  # which buffer is filling
        self._fill = 0
        self._index = 0  # the filling chunk's index
        self._pending: list[Future[None]] = []
        self._ended = False
        self._fd = raw.fileno()
        self._flusher = EarlyFlush(self._fd)
        _write_all(self._fd, self.header.raw)

    def write(self, data: bytes) -> int:
        if self._ended:
            raise ValueError("the part has ended")
        count = len(data)
        self.size += count
        if self.size > self.limit:
            raise FileTooLarge(
                f"file: no document may be larger than {self.limit // 2**20} MB", field="file"
            )
        view, size, done = memoryview(data).cast("B"), self.header.chunk_size, 0
        while done < count:
            if self._fill == size:  # a byte past a full chunk: it is not the last
                self._dispatch(final=False)
            take = min(size - self._fill, count - done)
            self._buffers[self._current][self._fill : self._fill + take] = view[done : done + take]
            self._fill += take
            done += take
        return count

    def _dispatch(self, final: bool) -> None:
        """The filled chunk handed to the upload threads (one hashes it, the other seals
        and writes it); the other buffer fills next."""
        self._wait()
        chunk = memoryview(self._buffers[self._current])[: self._fill]
        if self._index == 0:
            head = bytes(chunk[:_HEAD])
            chunk[: len(head)] = sanitise_head(head)
        nonce = self.header.nonce(self._index, final)
        threads = upload_threads()
        self._pending = [
            threads.submit(self._digest.update, chunk),
            threads.submit(self._seal, chunk, nonce),
        ]
        self._current, self._fill, self._index = 1 - self._current, 0, self._index + 1

    def _seal(self, chunk: memoryview, nonce: bytes) -> None:
        sealed = memoryview(self._out)[: len(chunk) + TAG]  # one buffer for every chunk
        self._aead.encrypt_into(nonce, chunk, self.header.raw, sealed)
        _write_all(self._fd, sealed)
        self._flusher.wrote(len(sealed))

    def _wait(self) -> None:
        """The chunk in flight done (both jobs, so neither still reads a buffer about to
        be reused); a failed write (a full disk) raises here, in the request."""
        pending, self._pending = self._pending, []
        wait(pending)
        for job in pending:
            job.result()

    def end(self) -> None:
        """The part is complete: its last chunk sealed and every write done."""
        if not self._ended:
            self._ended = True
            self._dispatch(final=True)
            self._wait()
            self._flusher.finish()

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        self.end()  # werkzeug seeks to 0 once the part is complete
        return 0

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        pass

    @property
    def sha256(self) -> str:
        """The SHA-256 of what is stored (the sanitised bytes), read by the idempotency
        fingerprint too, so a retried upload is never read a second time to compare."""
        self.end()
        return self._digest.hexdigest()

    @property
    def closed(self) -> bool:
        return self._raw.closed

    def close(self) -> None:
        try:  # a write still running must end before its file is closed and removed
            with suppress(Exception):  # a part given up: its failure changes nothing now
                self._wait()
            with suppress(Exception):
                self._flusher.finish()
        finally:
            self._raw.close()

    def received(self) -> SealedUpload:
        """Finish writing and hand the sealed file over (the caller now owns `path`)."""
        digest = self.sha256
        self.close()
        return SealedUpload(Path(self.name), digest, self.size, self.header, self._data_key)


@dataclass(frozen=True)
class SealedUpload:
    """A file part taken in whole, sealed in the blob format: where it is, the SHA-256 and
    size of its plaintext (as stored), its header and data key."""

    path: Path
    sha256: str
    size: int
    header: Header
    data_key: bytes


FLUSH_EVERY = 16 * 2**20


class EarlyFlush:
    """A file made durable while it is still written: every `FLUSH_EVERY` bytes, an
    `fdatasync` of it starts on this worker's flushing thread (on its own duplicate of
    the descriptor; never more than one at a time, none queued), so the disk writes while
    the body still arrives and the fsync that publishes the file finds little left.
    `finish` waits for the one running and raises its failure: a write-back error seen
    here would not be seen again by the publishing fsync, so it must fail the upload."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._since = 0
        self._running: Future[None] | None = None
        self._thread = _flushing_thread()  # found here, in the request (`wrote` may run
        # on an upload thread, outside the app's context)

    def wrote(self, count: int) -> None:
        self._since += count
        if self._since < FLUSH_EVERY:
            return
        if self._running is not None:
            if not self._running.done():
                return  # the disk is still busy with the last one
            self._running.result()  # its failure (raised in the request)
        self._since = 0
        self._running = self._thread.submit(_datasync, os.dup(self._fd))

    def finish(self) -> None:
        running, self._running = self._running, None
        if running is not None:
            running.result()


def _datasync(fd: int) -> None:
    try:
        os.fdatasync(fd)
    finally:
        os.close(fd)


def _flushing_thread() -> ThreadPoolExecutor:
    """This worker's flushing thread (made on first use, as `upload_threads`)."""
    thread = current_app.extensions.get("crm.upload_flush")
    if thread is None:
        thread = ThreadPoolExecutor(1, thread_name_prefix="upload-flush")
        current_app.extensions["crm.upload_flush"] = thread
    return thread


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def upload_threads() -> ThreadPoolExecutor:
    """This worker's two upload threads, made on first use (never at import, nor in the
    master before a fork): a multipart part seals one chunk on one of them while the
    request's thread parses the next; a resumable part hashes the bytes as sent on one
    while the other hashes them as stored, seals and writes."""
    threads = current_app.extensions.get("crm.upload_threads")
    if threads is None:
        threads = ThreadPoolExecutor(2, thread_name_prefix="upload")
        current_app.extensions["crm.upload_threads"] = threads
    return threads


class StreamingRequest(Request):
    """Each multipart file part goes to a `SealingTempFile`, never to memory, read by a
    parser that hands it the bytes without copying them (`crm.documents.multipart`)."""

    form_data_parser_class = StreamingFormDataParser

    def _get_file_stream(
        self,
        total_content_length: int | None,
        content_type: str | None,
        filename: str | None = None,
        content_length: int | None = None,
    ) -> IO[Any]:
        store = storage()
        temp = SealingTempFile(store.new_temp(), largest_upload(), store.keyring, store.chunk_size)
        self.environ.setdefault("crm.upload_temps", []).append(temp)
        return temp  # type: ignore[return-value]


def remove_leftover_temps(environ: dict[str, Any]) -> None:
    """A request that failed before its upload was stored leaves nothing behind."""
    for temp in environ.get("crm.upload_temps", []):
        temp.close()
        Path(temp.name).unlink(missing_ok=True)


def install(app: Flask) -> None:
    """Every request streams its file parts to temp files in the store (whichever view
    takes them: the partner API, the patient's page), and whatever a request leaves
    there (refused, or failed before its file was stored) is removed when it ends."""
    app.request_class = StreamingRequest
    # /readyz asks the configured store whether it takes documents (crm.core.health)
    app.extensions["crm.storage_readiness"] = lambda: current_storage().readiness_problem()

    @app.teardown_request
    def _remove_leftover_temps(_exc: BaseException | None) -> None:
        remove_leftover_temps(request.environ)

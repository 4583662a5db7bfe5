"""Streaming multipart uploads: file parts go straight to a temp file in the store.

Werkzeug's form parser reads the body in 64 KB chunks and hands each file part's bytes
to the stream our request class supplies: a `HashingTempFile`, which writes them to a
temp file beside the store while counting them (refusing past the largest size any kind
may have), hashing them (SHA-256, the storage key) and zeroing a DICOM preamble on the
way through (CVE-2019-11687), so a polyglot's payload never even reaches the disk.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from flask import Flask, Request, current_app, request

from crm.core.errors import DomainError
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


class HashingTempFile:
    """The stream a file part is written to: counted, hashed, preamble zeroed, on disk."""

    def __init__(self, raw: IO[bytes], limit: int) -> None:
        self._raw = raw
        self.name = raw.name
        self.limit = limit
        self.size = 0
        self._digest = hashlib.sha256()
        self._head: bytes | None = b""  # None once the first bytes are written

    def write(self, data: bytes) -> int:
        self.size += len(data)
        if self.size > self.limit:
            raise FileTooLarge(
                f"file: no document may be larger than {self.limit // 2**20} MB", field="file"
            )
        if self._head is not None:
            self._head += data
            if len(self._head) < _HEAD:
                return len(data)
            self._flush_head()
            return len(data)
        self._digest.update(data)
        self._raw.write(data)
        return len(data)

    def _flush_head(self) -> None:
        if self._head is None:
            return
        head, self._head = sanitise_head(self._head), None
        self._digest.update(head)
        self._raw.write(head)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        self._flush_head()  # werkzeug seeks to 0 once the part is complete
        return self._raw.seek(offset, whence)

    def read(self, size: int = -1) -> bytes:
        return self._raw.read(size)

    def tell(self) -> int:
        return self._raw.tell()

    def flush(self) -> None:
        self._raw.flush()

    @property
    def sha256(self) -> str:
        """The SHA-256 of what was stored (the sanitised bytes), read by the idempotency
        fingerprint too, so a retried upload is never read a second time to compare."""
        self._flush_head()
        return self._digest.hexdigest()

    @property
    def closed(self) -> bool:
        return self._raw.closed

    def close(self) -> None:
        self._raw.close()

    def received(self) -> Received:
        """Finish writing and hand the file over (the caller now owns `path`)."""
        digest = self.sha256
        self._raw.flush()
        self.close()
        return Received(Path(self.name), digest, self.size)


class StreamingRequest(Request):
    """Each multipart file part goes to a `HashingTempFile`, never to memory."""

    def _get_file_stream(
        self,
        total_content_length: int | None,
        content_type: str | None,
        filename: str | None = None,
        content_length: int | None = None,
    ) -> IO[Any]:
        temp = HashingTempFile(storage().new_temp(), largest_upload())
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

"""The part file of a resumable upload: appended to as PATCH requests arrive, hashed as
it is written, never held in memory.

A part lives at `<store tmp>/parts/<upload id>.part` on the local disk (with either
store: the checks read the plaintext there, as for a one-shot upload). Its size is the
upload's offset: bytes are written as they arrive and nothing else writes there, so a
worker killed mid-chunk leaves exactly what it received, which is where the client
resumes. Nothing is fsynced while the parts arrive; the stored document is fsynced once
when it is kept, and the whole-file SHA-256 the client declared catches a part a crash
damaged (the client then starts again).

Two digests run as the bytes are written: SHA-256 of the bytes as sent (compared with the
client's declaration at the end) and, only for a DICOM whose preamble is not zero, of the
bytes as stored (the preamble zeroed, `upload.sanitise_head`): the storage key. Their
state stays in the worker between the PATCH requests of one upload; a request served by
another worker, or after a restart, hashes the part on disk again first.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from flask import current_app

from crm.core.errors import Conflict
from crm.documents.upload import HEAD_BYTES as _HEAD
from crm.documents.upload import sanitise_head
from crm.documents.wire import ClientWentAway

READ_SIZE = 4 * 1024 * 1024  # one buffer, filled from the socket before each write
_CACHED_DIGESTS = 64


class UploadBusy(Conflict):
    code, title = "upload-busy", "Another request is still sending to this upload"


@dataclass
class PartDigest:
    """The running SHA-256 of a part as sent and, if it differs, as it will be stored."""

    size: int = 0
    head: bytes = b""
    sent: Any = field(default_factory=hashlib.sha256)
    stored: Any = None  # a second digest, only when sanitising changes the head

    def update(self, data: memoryview) -> None:
        if len(self.head) < _HEAD:
            take = data[: _HEAD - len(self.head)]
            self.head += bytes(take)
            self.sent.update(take)
            self.size += len(take)
            data = data[len(take) :]
            if len(self.head) == _HEAD and (clean := sanitise_head(self.head)) != self.head:
                self.stored = hashlib.sha256(clean)
            if not data:
                return
        self.sent.update(data)
        if self.stored is not None:
            self.stored.update(data)
        self.size += len(data)

    @property
    def sent_sha256(self) -> str:
        return self.sent.hexdigest()

    @property
    def stored_sha256(self) -> str:
        return (self.stored or self.sent).hexdigest()

    @property
    def sanitised(self) -> bool:
        return self.stored is not None

    @classmethod
    def of_file(cls, path: Path, size: int) -> PartDigest:
        """The digest of the first `size` bytes of a part on disk (a resume elsewhere)."""
        digest, buffer = cls(), bytearray(READ_SIZE)
        with path.open("rb", buffering=0) as handle:
            while digest.size < size:
                count = handle.readinto(memoryview(buffer)[: min(READ_SIZE, size - digest.size)])
                if not count:
                    break
                digest.update(memoryview(buffer)[:count])
        return digest


def _cache() -> OrderedDict[str, PartDigest]:
    return current_app.extensions.setdefault("crm.upload_digests", OrderedDict())


def digest_for(upload_id: str, path: Path, size: int) -> PartDigest:
    """This worker's running digest of the part if it is up to date, else one from disk."""
    cached = _cache().pop(upload_id, None)
    if cached is not None and cached.size == size:
        return cached
    return PartDigest.of_file(path, size)


def remember(upload_id: str, digest: PartDigest) -> None:
    cache = _cache()
    cache[upload_id] = digest
    while len(cache) > _CACHED_DIGESTS:
        cache.popitem(last=False)


def forget(upload_id: str) -> None:
    _cache().pop(upload_id, None)


@contextmanager
def locked_for_append(path: Path) -> Iterator[int]:
    """The part open for appending, locked (one PATCH at a time per upload: a client that
    resumes while its broken request is still being read is told so, 409)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                raise UploadBusy(
                    "a previous request is still sending to this upload; ask its offset "
                    "(HEAD) again in a few seconds"
                ) from exc
            raise
        yield fd
    finally:
        os.close(fd)


def _write_all(fd: int, data: memoryview) -> None:
    while data:
        data = data[os.write(fd, data) :]


def append(fd: int, body: IO[bytes], count: int, digest: PartDigest) -> None:
    """Up to `count` bytes of `body` appended and hashed, in large reads. If the client
    goes away, what arrived is kept (written and hashed) and `ClientWentAway` raised."""
    buffer = bytearray(min(READ_SIZE, max(count, 1)))
    view, left = memoryview(buffer), count
    while left > 0:
        filled, want = 0, min(len(buffer), left)
        try:
            while filled < want:
                got = body.readinto(view[filled:want])
                if not got:
                    raise ClientWentAway(f"the body ended with {left - filled} bytes to come")
                filled += got
        finally:
            if filled:
                _write_all(fd, view[:filled])
                digest.update(view[:filled])
                left -= filled


def zero_preamble(path: Path) -> None:
    """The stored form of a DICOM: its 128-byte preamble zeroed in place."""
    with path.open("r+b") as handle:
        clean = sanitise_head(handle.read(_HEAD))
        handle.seek(0)
        handle.write(clean)


def size_of(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0

"""The part of a resumable upload: encrypted as it arrives, in the stored blob's own format.

A part is `<store tmp>/parts/<upload id>.part`, on the local disk with either store. It
is written exactly as the store keeps a document (`crm.documents.encryption`: the header
with a fresh data key wrapped by the active master key, then 1 MiB chunks sealed with
AES-256-GCM), so no plaintext of an upload in progress ever rests on the disk, and once
the last byte is in, keeping it is a rename (S3: an upload of the sealed bytes), not a
second pass over the file. The chunk a PATCH ends inside is kept beside it, sealed under
the same data key with a random nonce (`.tail`), until the next PATCH completes it. The
upload's length is known from the start, so each chunk knows whether it is the last.

A DICOM's preamble is zeroed in the first chunk before it is sealed (CVE-2019-11687, as
for a one-shot upload); the 132 bytes as sent are kept sealed beside the part (`.head`),
because the client's declared SHA-256 is of the bytes it sent.

Two digests: SHA-256 of the bytes as sent (checked against the declaration at the end)
and, only when the preamble was zeroed, of the bytes as stored (the storage key; else
they are the same). Their state stays in this worker between the PATCH requests of one
upload. A request served by a worker without it (another worker, a restart) does not hash
at all, and the request that completes the upload then hashes the whole part once: at
most one more pass over the file, however the requests were spread over the workers (a
re-read at every change of worker would cost the square of the file's size). The part's
size is the upload's offset (sealed chunks plus the tail): a worker killed mid-chunk
keeps what it sealed, and a torn last write is cut off. The part is written back as it
arrives (`upload.EarlyFlush`; a write-back failure gives the upload up) and fsynced once
when it is kept; the declared SHA-256 catches a part a crash damaged (the client then
starts again).
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import io
import os
from collections import OrderedDict
from collections.abc import Iterator
from concurrent.futures import Future, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import current_app

from crm.core.errors import Conflict
from crm.documents.encryption import TAG, DocumentUnreadable, Header, Keyring, Sealed
from crm.documents.upload import HEAD_BYTES, EarlyFlush, sanitise_head, upload_threads
from crm.documents.wire import ClientWentAway

_CACHED_DIGESTS = 64
_NONCE = 12


class UploadBusy(Conflict):
    code, title = "upload-busy", "Another request is still sending to this upload"


@dataclass
class Digests:
    """What has been hashed: `sent` covers every byte received (`offset`), `stored` (None
    while the bytes as stored are the bytes as sent) the sealed chunks' plaintext. Not
    `hashing`: this worker came in after the first byte without the digests, and only
    counts; the part is hashed whole when it is complete."""

    offset: int = 0
    sent: Any = field(default_factory=hashlib.sha256)
    stored: Any = None
    hashing: bool = True

    @classmethod
    def counting_from(cls, offset: int) -> Digests:
        return cls(offset=offset, sent=None, hashing=False)

    def update_sent(self, data: Any) -> None:
        if self.hashing:
            self.sent.update(data)

    def update_stored(self, data: Any) -> None:
        if self.hashing and self.stored is not None:
            self.stored.update(data)

    def sent_sha256(self) -> str:
        return self.sent.hexdigest()

    def stored_sha256(self) -> str:
        return (self.stored or self.sent).hexdigest()


def _cache() -> OrderedDict[str, Digests]:
    return current_app.extensions.setdefault("crm.upload_digests", OrderedDict())


def forget(upload_id: str) -> None:
    _cache().pop(upload_id, None)


def _seal_small(aead: AESGCM, header: Header, data: bytes) -> bytes:
    nonce = os.urandom(_NONCE)
    return nonce + aead.encrypt(nonce, data, b"part-side" + header.raw)


def _open_small(aead: AESGCM, header: Header, path: Path) -> bytes:
    try:
        blob = path.read_bytes()
    except FileNotFoundError:
        return b""
    try:
        return aead.decrypt(blob[:_NONCE], blob[_NONCE:], b"part-side" + header.raw)
    except InvalidTag as exc:
        raise DocumentUnreadable(f"{path.name} failed its integrity check") from exc


class _InFlight:
    """The jobs of the chunk being sealed on the upload threads, and the buffer its
    ciphertext is sealed into (one chunk is in flight at a time)."""

    def __init__(self, out_size: int, flush: EarlyFlush) -> None:
        self._jobs: list[Future[Any]] = []
        self.failed = False
        self.out = bytearray(out_size)
        self.flush = flush

    def add(self, job: Future[Any]) -> None:
        self._jobs.append(job)

    def wait(self) -> None:
        """Every job done (none is left running on a buffer about to be reused or on a
        file about to be closed); then the first failure (a full disk) raises."""
        jobs, self._jobs = self._jobs, []
        wait(jobs)
        for job in jobs:
            if job.exception() is not None:
                self.failed = True
                job.result()


class SealedPart:
    """One upload's part on disk; `create` it once, then `open` it per request."""

    def __init__(self, path: Path, length: int, header: Header, data_key: bytes) -> None:
        self.path, self.length, self.header = path, length, header
        self.aead = AESGCM(data_key)
        self.step = header.chunk_size + TAG
        self.tail_path = path.with_suffix(".tail")
        self.head_path = path.with_suffix(".head")

    # -- where things are
    @classmethod
    def create(cls, path: Path, keyring: Keyring, chunk_size: int) -> None:
        _, sealed = keyring.new_data_key()
        header = Header.new(sealed, chunk_size)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, header.raw)
        finally:
            os.close(fd)

    @classmethod
    def open(cls, path: Path, length: int, keyring: Keyring) -> SealedPart:
        with path.open("rb") as handle:
            header = Header.read(handle)
        if header is None:
            raise DocumentUnreadable(f"{path.name} has no header")
        return cls(path, length, header, keyring.unwrap(header.sealed))

    @property
    def sealed(self) -> Sealed:
        return self.header.sealed

    def _body_size(self) -> int:
        return self.path.stat().st_size - len(self.header.raw)

    def sealed_chunks(self) -> tuple[int, int]:
        """(whole chunks sealed, plaintext bytes in them), a torn trailing write ignored."""
        body = self._body_size()
        whole, rest = divmod(body, self.step)
        if whole * self.header.chunk_size + max(rest - TAG, 0) == self.length and rest > TAG:
            return whole + 1, self.length  # the last chunk, shorter, is in
        return whole, min(whole * self.header.chunk_size, self.length)

    def offset(self) -> int:
        _, plain = self.sealed_chunks()
        if plain == self.length:
            return plain
        tail = self.tail_path.stat().st_size - _NONCE - TAG if self.tail_path.exists() else 0
        return plain + max(tail, 0)

    # -- reading back
    def plaintext_chunks(self) -> Iterator[bytes]:
        count, _ = self.sealed_chunks()
        with self.path.open("rb") as handle:
            handle.seek(len(self.header.raw))
            for index in range(count):
                sealed = handle.read(self.step)
                final = (index + 1) * self.header.chunk_size >= self.length
                try:
                    nonce = self.header.nonce(index, final)
                    yield self.aead.decrypt(nonce, sealed, self.header.raw)
                except InvalidTag as exc:
                    raise DocumentUnreadable(f"{self.path.name}: chunk {index} damaged") from exc

    def reader(self) -> IO[bytes]:
        """The stored plaintext as a seekable file (the checks read it: sniffing, pydicom,
        zipfile); one chunk decrypted at a time."""
        return io.BufferedReader(_PlainReader(self), buffer_size=self.header.chunk_size)

    def running(self, upload_id: str) -> Digests:
        """What a PATCH hashes onto: this worker's running digests if they are up to date;
        fresh ones at the first byte; else only a count (the end hashes the part)."""
        cached = _cache().pop(upload_id, None)
        offset = self.offset()
        if cached is not None and cached.offset == offset:
            return cached
        return Digests() if offset == 0 else Digests.counting_from(offset)

    def digests(self, upload_id: str) -> Digests:
        """The complete part's digests: this worker's, if it hashed every byte, else the
        part's, read once."""
        cached = self.running(upload_id)
        if cached.hashing:
            return cached
        digests = Digests()
        raw_head = _open_small(self.aead, self.header, self.head_path)
        if raw_head:
            digests.stored = hashlib.sha256()
        for index, plain in enumerate(self.plaintext_chunks()):
            digests.sent.update(raw_head + plain[len(raw_head) :] if index == 0 else plain)
            if digests.stored is not None:
                digests.stored.update(plain)
            digests.offset += len(plain)
        tail = _open_small(self.aead, self.header, self.tail_path)
        digests.sent.update(tail)
        digests.offset += len(tail)
        return digests

    def remember(self, upload_id: str, digests: Digests) -> None:
        cache = _cache()
        cache[upload_id] = digests
        while len(cache) > _CACHED_DIGESTS:
            cache.popitem(last=False)

    # -- writing
    def append(self, fd: int, body: IO[bytes], count: int, digests: Digests) -> None:
        """`count` bytes of `body` (which starts at `digests.offset`) sealed onto the part
        chunk by chunk, read straight into the chunk's buffer: while one chunk is hashed,
        sealed and written on this worker's upload threads, the next is read into the
        other buffer. If the client goes away, what arrived is kept (the open chunk as the
        tail) and `ClientWentAway` raised."""
        size = self.header.chunk_size
        _, done = self.sealed_chunks()
        buffers, current = (bytearray(size), bytearray(size)), 0
        view = memoryview(buffers[current])
        pending = _open_small(self.aead, self.header, self.tail_path)
        self.tail_path.unlink(missing_ok=True)  # from here on, the tail lives in memory
        fill = hashed = len(pending)  # the tail was hashed when it arrived
        view[:fill] = pending
        left = count
        in_flight = _InFlight(size + TAG, EarlyFlush(fd))
        try:
            while left > 0:
                want = min(size - fill, left, self.length - done - fill)
                got = 0
                try:
                    while got < want:
                        read = body.readinto(view[fill + got : fill + want])
                        if not read:
                            raise ClientWentAway(f"the body ended with {left - got} to come")
                        got += read
                finally:
                    digests.offset += got
                    fill += got
                    left -= got
                if fill == size or done + fill == self.length:
                    in_flight.wait()  # the chunk before is written: its buffer is free
                    self._seal_chunk(fd, view[:fill], done // size, digests, hashed, in_flight)
                    current = 1 - current
                    view = memoryview(buffers[current])
                    done, fill, hashed = done + fill, 0, 0
        finally:
            try:
                in_flight.wait()
            finally:  # (also when a write failed: it may have been the write-back's error)
                try:
                    in_flight.flush.finish()
                except OSError:  # write-back failed: the fsync that keeps the part would
                    self.remove()  # not see it again, so the upload starts over
                    raise
            if fill and not in_flight.failed:  # (after a failed write, the part is cut back
                # to its last whole chunk by the next request: this chunk is not its tail)
                digests.update_sent(view[hashed:fill])
                tail = _seal_small(self.aead, self.header, bytes(view[:fill]))
                with self.tail_path.open("wb") as handle:
                    handle.write(tail)

    def _seal_chunk(
        self,
        fd: int,
        plain: memoryview,
        index: int,
        digests: Digests,
        hashed: int,
        in_flight: _InFlight,
    ) -> None:
        """One chunk handed to the upload threads to be sealed and appended. `plain[hashed:]`
        is not in the digest of the sent bytes yet: that hash runs on one thread while the
        other hashes the stored bytes (if they differ), encrypts and writes (hashlib and
        AES-GCM let go of the GIL), and this one reads the next chunk."""
        if index == 0 and len(plain) >= HEAD_BYTES:
            raw = bytes(plain[:HEAD_BYTES])
            clean = sanitise_head(raw)
            if clean != raw:  # a DICOM preamble to zero: the stored bytes differ from here
                if hashed < HEAD_BYTES:
                    digests.update_sent(plain[hashed:HEAD_BYTES])
                    hashed = HEAD_BYTES
                plain[:HEAD_BYTES] = clean
                digests.stored = hashlib.sha256()
                self.head_path.write_bytes(_seal_small(self.aead, self.header, raw))
        final = (index + 1) * self.header.chunk_size >= self.length
        nonce = self.header.nonce(index, final)
        threads = upload_threads()
        if digests.hashing:
            in_flight.add(threads.submit(digests.sent.update, plain[hashed:]))
        in_flight.add(threads.submit(self._write_chunk, fd, plain, nonce, digests, in_flight))

    def _write_chunk(
        self, fd: int, plain: memoryview, nonce: bytes, digests: Digests, in_flight: _InFlight
    ) -> None:
        digests.update_stored(plain)
        sealed = memoryview(in_flight.out)[: len(plain) + TAG]  # one buffer for all chunks
        self.aead.encrypt_into(nonce, plain, self.header.raw, sealed)
        view = sealed
        while view:
            view = view[os.write(fd, view) :]
        in_flight.flush.wrote(len(sealed))

    def remove(self) -> None:
        for path in (self.path, self.tail_path, self.head_path):
            path.unlink(missing_ok=True)


class _PlainReader(io.RawIOBase):
    """Random access to a complete part's plaintext, decrypting the chunk asked for."""

    def __init__(self, part: SealedPart) -> None:
        self.name = str(part.path)  # pydicom names the file it reads
        self._part = part
        self._handle = part.path.open("rb")
        self._position = 0
        self._cached: tuple[int, bytes] | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._part.length}
        self._position = max(base[whence] + offset, 0)
        return self._position

    def _chunk(self, index: int) -> bytes:
        if self._cached is None or self._cached[0] != index:
            part, header = self._part, self._part.header
            self._handle.seek(len(header.raw) + index * part.step)
            final = (index + 1) * header.chunk_size >= part.length
            try:
                plain = part.aead.decrypt(
                    header.nonce(index, final), self._handle.read(part.step), header.raw
                )
            except InvalidTag as exc:
                raise DocumentUnreadable(f"chunk {index} of the part is damaged") from exc
            self._cached = (index, plain)
        return self._cached[1]

    def readinto(self, buffer: Any) -> int:
        if self._position >= self._part.length:
            return 0
        size = self._part.header.chunk_size
        index, start = divmod(self._position, size)
        chunk = self._chunk(index)[start:]
        count = min(len(buffer), len(chunk))
        memoryview(buffer).cast("B")[:count] = chunk[:count]
        self._position += count
        return count

    def close(self) -> None:
        self._handle.close()
        super().close()


@contextmanager
def locked(path: Path) -> Iterator[int]:
    """The part open for appending, locked: one PATCH at a time per upload (a client that
    resumes while its broken request is still being read is told so, 409)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
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


def cut_torn_write(part: SealedPart, fd: int) -> None:
    """A write cut short by a killed worker leaves part of a chunk: drop it."""
    count, _ = part.sealed_chunks()
    whole = len(part.header.raw) + count * part.step
    if part.path.stat().st_size > whole and part.offset() != part.length:
        os.ftruncate(fd, whole)

"""Where uploaded files live: content-addressed by the SHA-256 of their plaintext, encrypted
at rest (`crm.documents.encryption`), on the local disk or an S3-compatible object store
(`crm.documents.storage_s3`), both behind the same small interface.

Uploads always stream to a temp file on the local disk first (`new_temp`): the checks
(sniffing, ZIP limits, DICOM metadata) read the plaintext there. `keep` then encrypts it
into the store under its hash, or, if that content is stored already, reuses the stored
blob and its data key (deduplication by plaintext hash, as before encryption).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import IO, BinaryIO, Protocol

from flask import current_app

from crm.documents.encryption import (
    CHUNK_SIZE,
    DocumentUnreadable,
    Header,
    Keyring,
    Sealed,
    data_key_of,
    decrypt,
    encrypt,
)

CHUNK = 1024 * 1024
_HEX = frozenset("0123456789abcdef")
_GONE, _NO_KEY = object(), object()


class Storage(Protocol):
    tmp: Path

    def new_temp(self) -> BinaryIO:
        """A writable temporary file on the local disk, where the checks can read it."""
        ...

    def keep(self, temp_path: Path, sha256: str, known: Iterable[Sealed] = ()) -> Sealed | None:
        """Store a finished temp file under its plaintext hash (encrypted); returns the
        wrapped data key for the document row (None: a legacy plaintext blob reused)."""
        ...

    def open(self, sha256: str, sealed: Sealed | None) -> Iterator[bytes]:
        """The plaintext in verified chunks; `DocumentUnreadable` if tampered with."""
        ...

    def exists(self, sha256: str) -> bool: ...

    def delete(self, sha256: str) -> None: ...


def check_key(key: str) -> str:
    if len(key) != 64 or not set(key) <= _HEX:
        raise ValueError("not a storage key")
    return key


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class EncryptedStore(ABC):
    """The encryption and deduplication both backends share; a backend supplies the raw
    blob operations (`_raw`, `_touch`, `_put`)."""

    keyring: Keyring
    chunk_size: int = CHUNK_SIZE
    tmp: Path

    def new_temp(self) -> BinaryIO:
        self.tmp.mkdir(parents=True, exist_ok=True)
        return tempfile.NamedTemporaryFile(dir=self.tmp, delete=False, prefix="upload-")

    # -- what a backend supplies
    @abstractmethod
    def _raw(self, sha256: str) -> AbstractContextManager[IO[bytes]]: ...

    @abstractmethod
    def _touch(self, sha256: str) -> bool:
        """Mark a stored blob fresh (the orphan sweep spares it); False if there is none."""
        ...

    @abstractmethod
    def _put(self, sha256: str, pieces: Iterator[bytes], exclusive: bool) -> bool:
        """Store the blob; with `exclusive`, False (and nothing stored) if one exists."""
        ...

    # -- the interface
    def keep(self, temp_path: Path, sha256: str, known: Iterable[Sealed] = ()) -> Sealed | None:
        check_key(sha256)
        try:
            for _ in range(5):
                if self._touch(sha256):
                    reused = self._reuse(sha256, list(known))
                    if reused is _GONE:  # the sweep took it meanwhile: store it again
                        continue
                    if reused is not _NO_KEY:
                        return reused  # type: ignore[return-value]
                    # No configured key opens it: an orphan from a retired master key.
                    return self._write(temp_path, sha256, exclusive=False)
                written = self._write(temp_path, sha256, exclusive=True)
                if written is not None:
                    return written
                # Another upload of the same content published it first: use theirs.
            raise RuntimeError(f"could not store {sha256}")
        finally:
            temp_path.unlink(missing_ok=True)

    def keep_sealed(
        self, blob_path: Path, sha256: str, sealed: Sealed, known: Iterable[Sealed] = ()
    ) -> Sealed | None:
        """Store a file already in the blob format (a resumable upload's part, sealed as it
        arrived under the data key `sealed` wraps) under its plaintext hash: the same
        deduplication as `keep`, but the bytes are published as they are, not encrypted
        again. Returns the wrapped data key for the document row."""
        check_key(sha256)
        try:
            for _ in range(5):
                if self._touch(sha256):
                    reused = self._reuse(sha256, list(known))
                    if reused is _GONE:
                        continue
                    if reused is not _NO_KEY:
                        return reused  # type: ignore[return-value]
                    self._publish(blob_path, sha256, exclusive=False)
                    return self.keyring.rewrap(sealed)
                if self._publish(blob_path, sha256, exclusive=True):
                    return self.keyring.rewrap(sealed)
            raise RuntimeError(f"could not store {sha256}")
        finally:
            blob_path.unlink(missing_ok=True)

    def _publish(self, blob_path: Path, sha256: str, exclusive: bool) -> bool:
        """A finished blob stored under `sha256` (a backend may do better than a copy)."""
        with blob_path.open("rb") as blob:
            return self._put(sha256, iter(lambda: blob.read(CHUNK), b""), exclusive)

    def _write(self, temp_path: Path, sha256: str, exclusive: bool) -> Sealed | None:
        with temp_path.open("rb") as plain:
            sealed, pieces = encrypt(plain, self.keyring, chunk_size=self.chunk_size)
            return sealed if self._put(sha256, pieces, exclusive) else None

    def _reuse(self, sha256: str, known: list[Sealed]) -> Sealed | object | None:
        """The stored blob's data key wrapped under the active master key; None for a
        legacy plaintext blob; `_NO_KEY` if no configured key opens it, `_GONE` if it
        disappeared since it was touched."""
        try:
            with self._raw(sha256) as source:
                header = Header.read(source)
                if header is None:
                    return None
                data_key = data_key_of(source, header, self.keyring, known)
        except FileNotFoundError:
            return _GONE
        return _NO_KEY if data_key is None else self.keyring.wrap(data_key)

    def open(self, sha256: str, sealed: Sealed | None) -> Iterator[bytes]:
        """The plaintext chunks. The file is opened and its header read at once (a missing
        file or an unknown key raises here); a damaged chunk raises when reached."""
        opened = self._raw(check_key(sha256))
        source = opened.__enter__()
        try:
            header, head = Header.sniff(source)
            if header is None and sealed is not None:
                raise DocumentUnreadable(
                    "the stored document is not encrypted, but its record says it is"
                )
            data_key = None if header is None else self.keyring.unwrap(sealed or header.sealed)
        except BaseException as exc:
            opened.__exit__(type(exc), exc, exc.__traceback__)
            raise
        return self._chunks(opened, source, header, data_key, head)

    def _chunks(self, opened, source, header, data_key, head: bytes) -> Iterator[bytes]:
        try:
            if header is None:  # legacy plaintext: what was read looking for a header first
                if head:
                    yield head
                while chunk := source.read(CHUNK):
                    yield chunk
            else:
                yield from decrypt(source, header, data_key)
        finally:
            opened.__exit__(None, None, None)

    def read_bytes(self, sha256: str, sealed: Sealed | None = None) -> bytes:
        """The whole plaintext (tests and small files only)."""
        return b"".join(self.open(sha256, sealed))

    def encrypt_in_place(self, sha256: str) -> Sealed:
        """A legacy plaintext blob replaced by its encryption; returns its wrapped key."""
        self.tmp.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=self.tmp, delete=False, prefix="upload-") as temp:
            for chunk in self.open(sha256, None):
                temp.write(chunk)
        path = Path(temp.name)
        try:
            if sha256_of(path) != sha256:
                raise DocumentUnreadable(f"stored file {sha256} does not match its hash")
            sealed = self._write(path, sha256, exclusive=False)
            assert sealed is not None
            return sealed
        finally:
            path.unlink(missing_ok=True)


class _LocalRaw(AbstractContextManager):
    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle: IO[bytes] | None = None

    def __enter__(self) -> IO[bytes]:
        self.handle = self.path.open("rb")
        return self.handle

    def __exit__(self, *exc) -> None:
        if self.handle is not None:
            self.handle.close()


class LocalStorage(EncryptedStore):
    """Files under `root/ab/cd/<sha256>`; identical content is stored once."""

    def __init__(self, root: str | Path, keyring: Keyring, chunk_size: int = CHUNK_SIZE) -> None:
        self.root = Path(root)
        self.tmp = self.root / "tmp"
        self.keyring = keyring
        self.chunk_size = chunk_size

    def readiness_problem(self) -> str | None:
        """Why this store cannot take a document now (for /readyz), or None."""
        try:
            self.tmp.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.tmp, prefix=".ready-"):
                pass
        except OSError as exc:
            return f"the documents folder {self.root} takes no writes ({exc.strerror or exc})"
        return None

    def path(self, key: str) -> Path:
        check_key(key)
        return self.root / key[:2] / key[2:4] / key

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def delete(self, sha256: str) -> None:
        self.path(sha256).unlink(missing_ok=True)

    def _raw(self, sha256: str) -> AbstractContextManager[IO[bytes]]:
        return _LocalRaw(self.path(sha256))

    def _touch(self, sha256: str) -> bool:
        try:
            os.utime(self.path(sha256))
        except FileNotFoundError:
            return False
        return True

    def _put(self, sha256: str, pieces: Iterator[bytes], exclusive: bool) -> bool:
        """Durable, then visible: the bytes reach the disk before the link or rename
        publishes them, so a crash leaves either no file or the whole file under its name."""
        target = self.path(sha256)
        target.parent.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=self.tmp, delete=False, prefix="upload-") as out:
            for piece in pieces:
                out.write(piece)
            out.flush()
            os.fsync(out.fileno())
        staged = Path(out.name)
        try:
            if exclusive:
                try:
                    os.link(staged, target)  # fails if another upload published it first
                except FileExistsError:
                    return False
            else:
                os.replace(staged, target)  # atomic on one filesystem
        finally:
            staged.unlink(missing_ok=True)
        _fsync_directory(target.parent)
        return True

    def _publish(self, blob_path: Path, sha256: str, exclusive: bool) -> bool:
        """The blob is on this disk already: made durable (its one fsync), then linked
        into place, as `_put` does with the copy it writes."""
        target = self.path(sha256)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(blob_path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        if exclusive:
            try:
                os.link(blob_path, target)
            except FileExistsError:
                return False
        else:
            staged = self.tmp / f"upload-{os.urandom(8).hex()}"
            os.link(blob_path, staged)
            os.replace(staged, target)
        _fsync_directory(target.parent)
        return True


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def storage_for(settings) -> EncryptedStore:
    """The configured backend (CRM_DOCUMENTS_STORAGE) with the configured keys."""
    keyring = Keyring.from_settings(settings)
    if settings["DOCUMENTS_STORAGE"] == "s3":
        from crm.documents.storage_s3 import S3Storage

        return S3Storage.from_settings(settings, keyring)
    return LocalStorage(settings["DOCUMENTS_DIR"], keyring)


def current_storage() -> EncryptedStore:
    """This app's store, built once per app (the keyring parsed, the S3 client made)."""
    settings = current_app.config["CRM"]
    cache = current_app.extensions.setdefault("crm.documents.storage", {})
    key = repr([settings[name] for name in _STORE_SETTINGS])
    if key not in cache:
        cache.clear()
        cache[key] = storage_for(settings)
    return cache[key]


_STORE_SETTINGS = (
    "DOCUMENTS_STORAGE",
    "DOCUMENTS_DIR",
    "DOCUMENTS_MASTER_KEYS",
    "DOCUMENTS_ACTIVE_KEY_ID",
    "SECRET_KEY",
    "S3_BUCKET",
    "S3_ENDPOINT_URL",
    "S3_REGION",
)

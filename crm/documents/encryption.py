"""Documents encrypted at rest: a random data key per stored file, wrapped by a master key.

The format of an encrypted blob (all integers big-endian):

    magic        8 bytes   b"CRMDOCv1"
    chunk size   4 bytes   plaintext bytes per chunk (the last may be shorter)
    nonce prefix 7 bytes   random, per blob
    key id       1 byte length, then the master key's id (ASCII)
    wrapped key  2 bytes length, then the data key wrapped by that master key (AES-KW)
    chunks       each: AES-256-GCM(data key, nonce, plaintext chunk, aad=header) + 16-byte tag

The nonce of chunk i is `prefix || i (4 bytes) || final (1 byte: 1 on the last chunk)`,
so a reordered, dropped, truncated or appended chunk fails its tag, and the header (key
id, wrapped key) is authenticated as each chunk's associated data. Nothing is held in
memory beyond one chunk: writing reads one chunk ahead to know which one is last.

The header's wrapped key is the one written with the blob and never changes; the
`documents` row carries its own copy (`key_id`, `wrapped_key`), which is what reading
uses and what `flask crm documents rewrap` re-wraps under the active master key without
touching the content. The header's copy lets a later upload of the same content (the
store deduplicates by the SHA-256 of the plaintext) find the blob's data key.
"""

from __future__ import annotations

import base64
import logging
import os
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import IO, NamedTuple

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

log = logging.getLogger(__name__)

MAGIC = b"CRMDOCv1"
CHUNK_SIZE = 1024 * 1024
TAG = 16
DEV_KEY_ID = "dev"
_FIXED = struct.Struct(">8sI7s")


class DocumentUnreadable(RuntimeError):
    """A stored document failed its integrity check or its key is not configured."""


class Sealed(NamedTuple):
    """A data key wrapped by the master key `key_id`: what a documents row stores."""

    key_id: str
    wrapped: bytes


def parse_master_keys(raw: str) -> dict[str, bytes]:
    """`id:base64,id:base64` (spaces and newlines allowed) -> {id: 32-byte key}."""
    keys: dict[str, bytes] = {}
    for item in raw.replace("\n", ",").split(","):
        if not (item := item.strip()):
            continue
        key_id, sep, encoded = item.partition(":")
        if not sep or not key_id.strip():
            raise ValueError("each key must be id:base64-of-32-bytes")
        try:
            key = base64.b64decode(encoded.strip(), validate=True)
        except ValueError as exc:
            raise ValueError(f"key {key_id.strip()!r} is not base64") from exc
        if len(key) != 32:
            raise ValueError(f"key {key_id.strip()!r} must be 32 bytes (AES-256)")
        keys[key_id.strip()] = key
    return keys


@dataclass(frozen=True)
class Keyring:
    """The configured master keys and the one new data keys are wrapped with."""

    keys: Mapping[str, bytes]
    active_id: str

    @classmethod
    def from_settings(cls, settings: Mapping[str, object]) -> Keyring:
        keys = dict(settings["DOCUMENTS_MASTER_KEYS"])  # type: ignore[call-overload]
        active = str(settings["DOCUMENTS_ACTIVE_KEY_ID"])
        if not keys:  # development and tests only: validate() refuses this in production
            log.warning("documents: no CRM_DOCUMENTS_MASTER_KEYS, using a development key")
            keys = {DEV_KEY_ID: dev_master_key(str(settings["SECRET_KEY"]))}
            active = DEV_KEY_ID
        return cls(keys, active or next(iter(keys)))

    def new_data_key(self) -> tuple[bytes, Sealed]:
        data_key = AESGCM.generate_key(bit_length=256)
        return data_key, self.wrap(data_key)

    def wrap(self, data_key: bytes) -> Sealed:
        return Sealed(self.active_id, aes_key_wrap(self.keys[self.active_id], data_key))

    def unwrap(self, sealed: Sealed) -> bytes:
        master = self.keys.get(sealed.key_id)
        if master is None:
            raise DocumentUnreadable(
                f"the document's master key {sealed.key_id!r} is not in CRM_DOCUMENTS_MASTER_KEYS"
            )
        try:
            return aes_key_unwrap(master, sealed.wrapped)
        except InvalidUnwrap as exc:
            raise DocumentUnreadable(
                f"the document's data key does not unwrap with master key {sealed.key_id!r}"
            ) from exc

    def rewrap(self, sealed: Sealed) -> Sealed:
        return sealed if sealed.key_id == self.active_id else self.wrap(self.unwrap(sealed))


def dev_master_key(secret: str) -> bytes:
    """A stable key derived from the (development) secret, so a restart still reads."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"crm documents dev key")
    return hkdf.derive(secret.encode())


@dataclass(frozen=True)
class Header:
    chunk_size: int
    prefix: bytes
    sealed: Sealed
    raw: bytes

    @classmethod
    def new(cls, sealed: Sealed, chunk_size: int = CHUNK_SIZE) -> Header:
        prefix = os.urandom(7)
        key_id = sealed.key_id.encode("ascii")
        raw = (
            _FIXED.pack(MAGIC, chunk_size, prefix)
            + struct.pack(">B", len(key_id))
            + key_id
            + struct.pack(">H", len(sealed.wrapped))
            + sealed.wrapped
        )
        return cls(chunk_size, prefix, sealed, raw)

    @classmethod
    def read(cls, source: IO[bytes]) -> Header | None:
        """The header at the start of `source`, or None for a plaintext (legacy) blob;
        `source` is left at the first chunk."""
        return cls.sniff(source)[0]

    @classmethod
    def sniff(cls, source: IO[bytes]) -> tuple[Header | None, bytes]:
        """(the header, b"") or, for a plaintext blob, (None, the bytes read looking)."""
        fixed = _read_exactly(source, _FIXED.size)
        if len(fixed) < _FIXED.size or not fixed.startswith(MAGIC):
            return None, fixed
        _, chunk_size, prefix = _FIXED.unpack(fixed)
        id_len = _read_exactly(source, 1)
        key_id = _read_exactly(source, id_len[0]) if id_len else b""
        wrapped_len = _read_exactly(source, 2)
        wrapped = _read_exactly(source, struct.unpack(">H", wrapped_len)[0]) if wrapped_len else b""
        if not id_len or not wrapped or not 0 < chunk_size <= 64 * 2**20:
            raise DocumentUnreadable("the stored document's header is damaged")
        raw = fixed + id_len + key_id + wrapped_len + wrapped
        sealed = Sealed(key_id.decode("ascii", "replace"), wrapped)
        return cls(chunk_size, prefix, sealed, raw), b""

    def nonce(self, index: int, final: bool) -> bytes:
        return self.prefix + struct.pack(">IB", index, 1 if final else 0)


def _read_exactly(source: IO[bytes], size: int) -> bytes:
    parts, left = [], size
    while left > 0 and (part := source.read(left)):
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def encrypt(
    plain: IO[bytes], keyring: Keyring, data_key: bytes | None = None, chunk_size: int = CHUNK_SIZE
) -> tuple[Sealed, Iterator[bytes]]:
    """(the data key wrapped under the active master key, the blob's bytes in pieces)."""
    if data_key is None:
        data_key, sealed = keyring.new_data_key()
    else:
        sealed = keyring.wrap(data_key)
    header = Header.new(sealed, chunk_size)
    return sealed, _sealed_chunks(plain, AESGCM(data_key), header)


def _sealed_chunks(plain: IO[bytes], aead: AESGCM, header: Header) -> Iterator[bytes]:
    yield header.raw
    index, current = 0, _read_exactly(plain, header.chunk_size)
    while True:
        following = _read_exactly(plain, header.chunk_size) if current else b""
        final = not following
        yield aead.encrypt(header.nonce(index, final), current, header.raw)
        if final:
            return
        index, current = index + 1, following
        if index >= 2**32:
            raise ValueError("document too large for the encrypted format")


def decrypt(source: IO[bytes], header: Header, data_key: bytes) -> Iterator[bytes]:
    """The plaintext, one verified chunk at a time; `DocumentUnreadable` at the first chunk
    that fails (a flipped byte, a truncation, an appended or reordered chunk)."""
    aead, step, index = AESGCM(data_key), header.chunk_size + TAG, 0
    current = _read_exactly(source, step)
    while True:
        following = _read_exactly(source, step) if len(current) == step else b""
        final = not following
        try:
            yield aead.decrypt(header.nonce(index, final), current, header.raw)
        except InvalidTag as exc:
            raise DocumentUnreadable(
                f"the stored document failed its integrity check at chunk {index}: "
                "it was altered or damaged on storage"
            ) from exc
        if final:
            return
        index, current = index + 1, following


def data_key_of(
    source: IO[bytes], header: Header, keyring: Keyring, candidates: list[Sealed]
) -> bytes | None:
    """The blob's data key among `candidates` and its header's own wrapped key, proven by
    decrypting its first chunk; None when no configured key opens it."""
    first = _read_exactly(source, header.chunk_size + TAG)
    following = source.read(1)
    aead_input = (header.nonce(0, not following), first, header.raw)
    for sealed in [*candidates, header.sealed]:
        try:
            data_key = keyring.unwrap(sealed)
            AESGCM(data_key).decrypt(*aead_input)
        except (DocumentUnreadable, InvalidTag):
            continue
        return data_key
    return None

"""Where uploaded files live: content-addressed by SHA-256, behind a small interface."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Protocol

CHUNK = 1024 * 1024


class Storage(Protocol):
    def new_temp(self) -> BinaryIO:
        """A writable temporary file on the same device as the store."""
        ...

    def keep(self, temp_path: Path, sha256: str) -> str:
        """Move a finished temp file into the store under its hash; returns the key."""
        ...

    def path(self, key: str) -> Path: ...


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class LocalStorage:
    """Files under `root/ab/cd/<sha256>`; identical content is stored once."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.tmp = self.root / "tmp"

    def new_temp(self) -> BinaryIO:
        self.tmp.mkdir(parents=True, exist_ok=True)
        return tempfile.NamedTemporaryFile(dir=self.tmp, delete=False, prefix="upload-")

    def path(self, key: str) -> Path:
        if len(key) != 64 or not all(c in "0123456789abcdef" for c in key):
            raise ValueError("not a storage key")
        return self.root / key[:2] / key[2:4] / key

    def keep(self, temp_path: Path, sha256: str) -> str:
        """Durable, then visible: the bytes reach the disk before the rename publishes them,
        so a crash leaves either no file or the whole file under its name."""
        target = self.path(sha256)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.utime(target)  # already stored: fresh again, so the orphan sweep spares it
        except FileNotFoundError:
            pass
        else:
            temp_path.unlink(missing_ok=True)
            return sha256
        with temp_path.open("rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temp_path, target)  # atomic on one filesystem
        directory = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        return sha256

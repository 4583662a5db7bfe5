"""What a file is, by its bytes, never by its name."""

from __future__ import annotations

from pathlib import Path
from typing import IO

DICOM_MAGIC_OFFSET = 128
_SIGNATURES = (
    (b"%PDF-", "pdf"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"PK\x03\x04", "zip"),
)


def is_dicom(head: bytes) -> bool:
    return head[DICOM_MAGIC_OFFSET : DICOM_MAGIC_OFFSET + 4] == b"DICM"


def sniff(source: Path | IO[bytes]) -> str | None:
    """dicom, pdf, jpeg, png, zip, or None for anything else (a file, or a seekable
    plaintext reader, read from its start)."""
    if isinstance(source, Path):
        with source.open("rb") as handle:
            head = handle.read(DICOM_MAGIC_OFFSET + 4)
    else:
        source.seek(0)
        head = source.read(DICOM_MAGIC_OFFSET + 4)
    if is_dicom(head):
        return "dicom"
    return next((kind for magic, kind in _SIGNATURES if head.startswith(magic)), None)

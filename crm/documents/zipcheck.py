"""A ZIP of DICOM files, checked before anything is extracted from it.

Refused: too many entries, too much uncompressed data, a suspicious compression ratio
(zip bombs), encrypted entries, symbolic links, and names that could land outside the
folder on any system: absolute or climbing paths, Windows drive letters (`C:/x`, `C:x`),
backslashes (`..\\x`, UNC `\\\\server\\share`) and control characters. Every file
inside must itself be DICOM. The check reads only the central directory and the first
132 bytes of each entry.
"""

from __future__ import annotations

import re
import stat
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from crm.documents.sniff import is_dicom


@dataclass(frozen=True)
class ZipLimits:
    max_entries: int = 5000
    max_total_bytes: int = 4 * 1024**3
    max_ratio: int = 100


class ZipRefused(ValueError):
    pass


# What reading a damaged or hostile entry can raise (CRC, sizes, deflate, method, password).
UNREADABLE_ENTRY = (zipfile.BadZipFile, EOFError, NotImplementedError, RuntimeError, zlib.error)
_DRIVE = re.compile(r"^[A-Za-z]:")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def unsafe_name(name: str) -> str | None:
    """Why an entry name could be written outside the folder (on POSIX or Windows), or None.

    Judged on the raw name, never a normalised one: a backslash is a separator on Windows,
    so `..\\x`, `\\\\server\\share\\x` and `dir\\x` are refused rather than reinterpreted.
    """
    if "\\" in name:
        return "has a backslash"
    if _CONTROL.search(name):
        return "has a control character"
    if name.startswith("/"):
        return "is an absolute path"
    if _DRIVE.match(name):
        return "names a drive"
    if ".." in name.split("/"):
        return "climbs out of the folder"
    return None


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def check_dicom_zip(path: Path | IO[bytes], limits: ZipLimits) -> list[zipfile.ZipInfo]:
    """The DICOM entries of a safe archive; ZipRefused says why one is not."""
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise ZipRefused("not a readable ZIP archive") from exc
    with archive:
        entries = [info for info in archive.infolist() if not info.is_dir()]
        _check_directory(entries, limits)
        for info in entries:
            if not is_dicom(_head_of(archive, info)):
                raise ZipRefused(f"{info.filename!r} is not a DICOM file")
        return entries


def _head_of(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """The first bytes of an entry; an entry that fails its CRC or lies about its size
    (zipfile stops at the declared size and checks) is refused, not a server error."""
    try:
        with archive.open(info) as member:
            return member.read(132)
    # zipfile raises NotImplementedError for a compression method it cannot read, and
    # lets zlib.error through for a deflate stream that is not one.
    except UNREADABLE_ENTRY as exc:
        raise ZipRefused(f"{info.filename!r} is damaged or unreadable ({exc})") from exc


def _check_directory(entries: list[zipfile.ZipInfo], limits: ZipLimits) -> None:
    if not entries:
        raise ZipRefused("the archive is empty")
    if len(entries) > limits.max_entries:
        raise ZipRefused(f"more than {limits.max_entries} files in the archive")
    total = sum(info.file_size for info in entries)
    if total > limits.max_total_bytes:
        raise ZipRefused("the archive unpacks to more than the limit")
    for info in entries:
        if why := unsafe_name(info.filename):
            raise ZipRefused(f"{info.filename!r} would be written outside the folder ({why})")
        if _is_symlink(info):
            raise ZipRefused(f"{info.filename!r} is a symbolic link")
        if info.flag_bits & 0x1:
            raise ZipRefused(f"{info.filename!r} is encrypted")
        if info.file_size > limits.max_ratio * max(info.compress_size, 1):
            raise ZipRefused(f"{info.filename!r} expands suspiciously (a zip bomb?)")

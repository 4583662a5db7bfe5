"""A ZIP of DICOM files, checked before anything is extracted from it.

Refused: too many entries, too much uncompressed data, a suspicious compression ratio
(zip bombs), encrypted entries, symbolic links, and names that are absolute or climb out
of the folder. Every file inside must itself be DICOM. The check reads only the central
directory and the first 132 bytes of each entry.
"""

from __future__ import annotations

import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from crm.documents.sniff import is_dicom


@dataclass(frozen=True)
class ZipLimits:
    max_entries: int = 5000
    max_total_bytes: int = 4 * 1024**3
    max_ratio: int = 100


class ZipRefused(ValueError):
    pass


def _safe_name(name: str) -> bool:
    path = PurePosixPath(name.replace("\\", "/"))
    return not (path.is_absolute() or ".." in path.parts or name.startswith(("/", "\\")))


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def check_dicom_zip(path: Path, limits: ZipLimits) -> list[zipfile.ZipInfo]:
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
    # zipfile raises NotImplementedError for a compression method it cannot read.
    except (zipfile.BadZipFile, EOFError, NotImplementedError, RuntimeError) as exc:
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
        if not _safe_name(info.filename):
            raise ZipRefused(f"{info.filename!r} would be written outside the folder")
        if _is_symlink(info):
            raise ZipRefused(f"{info.filename!r} is a symbolic link")
        if info.flag_bits & 0x1:
            raise ZipRefused(f"{info.filename!r} is encrypted")
        if info.file_size > limits.max_ratio * max(info.compress_size, 1):
            raise ZipRefused(f"{info.filename!r} expands suspiciously (a zip bomb?)")

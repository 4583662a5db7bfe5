"""DICOM hygiene and metadata: preambles zeroed (CVE-2019-11687), headers read for review.

A single DICOM file has its preamble zeroed while it streams in (see `upload`); a ZIP is
rewritten entry by entry, streamed, with every preamble zeroed. Headers are read with
pydicom without the pixel data; a file that has the magic but no DICOM header behind it
is refused.
"""

from __future__ import annotations

import shutil
import unicodedata
import warnings
import zipfile
from datetime import date
from pathlib import Path
from typing import IO, Any

import pydicom

PREAMBLE = 128
_COPY_CHUNK = 1024 * 1024
_DIRECTORY_SOP_CLASS = "1.2.840.10008.1.3.10"  # DICOMDIR: an index, not an image


class NotDicom(ValueError):
    """The bytes start like DICOM but are not a readable DICOM object."""


def rewrite_zip_zeroing_preambles(source: Path | IO[bytes], target: Path) -> None:
    """Copy an archive entry by entry, streamed, with every DICOM preamble zeroed.

    Each entry keeps its compression method (stored stays stored: no CPU spent squeezing
    images that do not compress). zipfile stops at each entry's declared size and checks
    its CRC, so an entry cannot unpack to more than the central directory admitted.
    """
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w") as dst:
        for info in src.infolist():
            if info.is_dir():
                continue
            with src.open(info) as reader, dst.open(_clean_info(info), "w") as writer:
                reader.read(PREAMBLE)
                writer.write(b"\0" * PREAMBLE)
                shutil.copyfileobj(reader, writer, _COPY_CHUNK)


def _clean_info(info: zipfile.ZipInfo) -> zipfile.ZipInfo:
    clean = zipfile.ZipInfo(info.filename, date_time=info.date_time)
    clean.compress_type = (
        zipfile.ZIP_STORED if info.compress_type == zipfile.ZIP_STORED else zipfile.ZIP_DEFLATED
    )
    clean.file_size = info.file_size  # lets zipfile decide on ZIP64 before writing
    return clean


def _text(value: Any) -> str | None:
    return str(value).strip() or None if value not in (None, "") else None


def header_of(dataset: pydicom.Dataset) -> dict[str, Any]:
    return {
        "modality": _text(dataset.get("Modality")),
        "body_part": _text(dataset.get("BodyPartExamined")),
        "study_date": _iso_date(dataset.get("StudyDate")),
        "study_description": _text(dataset.get("StudyDescription")),
        "patient_name": _text(dataset.get("PatientName")),
        "patient_id": _text(dataset.get("PatientID")),
        "patient_birth_date": _iso_date(dataset.get("PatientBirthDate")),
    }


def _iso_date(value: Any) -> str | None:
    text = str(value or "").strip()
    if len(text) != 8 or not text.isdigit():
        return None
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:])).isoformat()
    except ValueError:
        return None


def _read_header(source: Path | IO[bytes]) -> tuple[dict[str, Any], int]:
    """(the header fields, the number of images). The bytes are untrusted: whatever pydicom
    raises while reading them means "not a readable DICOM file", and its complaints about
    malformed values are not worth a log line each."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dataset = pydicom.dcmread(source, stop_before_pixels=True)
            sop_class = dataset.file_meta.get("MediaStorageSOPClassUID") or dataset.get(
                "SOPClassUID"
            )
            header = header_of(dataset) if sop_class else {}
            images = _images_in(dataset) if sop_class else 0
    except Exception as exc:  # a hostile file can trip any of pydicom's paths
        raise NotDicom("not a readable DICOM file") from exc
    if not sop_class:
        raise NotDicom("not a DICOM object (it names no SOP class)")
    return header, images


def _images_in(dataset: pydicom.Dataset) -> int:
    if dataset.file_meta.get("MediaStorageSOPClassUID") == _DIRECTORY_SOP_CLASS:
        return 0
    try:
        return max(int(dataset.get("NumberOfFrames") or 1), 1)
    except (TypeError, ValueError):
        return 1


def read_file_metadata(source: Path | IO[bytes]) -> dict[str, Any]:
    if not isinstance(source, Path):
        source.seek(0)
    header, images = _read_header(source)
    return {**header, "images": images}


def read_zip_metadata(path: Path, entries: list[zipfile.ZipInfo]) -> dict[str, Any]:
    """The first image's header, the set of modalities and the number of images."""
    modalities: set[str] = set()
    first: dict[str, Any] = {}
    images = 0
    with zipfile.ZipFile(path) as archive:
        for info in entries:
            with archive.open(info) as member:
                try:
                    header, count = _read_header(member)
                except NotDicom as exc:
                    raise NotDicom(f"{info.filename!r}: {exc}") from exc
            if count and not first:
                first = header
            images += count
            if header["modality"]:
                modalities.add(header["modality"])
    return {**first, "modalities": sorted(modalities), "images": images}


def _normal(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if c.isalnum())


def identity_mismatch(
    metadata: dict[str, Any], given: str, family: str, born: date | None
) -> str | None:
    """Why the DICOM header seems to belong to someone else, or None."""
    reasons = []
    name = metadata.get("patient_name")
    if name:
        parts = [_normal(p) for p in name.replace("^", " ").split()]
        if _normal(family) not in parts and _normal(given) not in parts:
            reasons.append(f"the images name the patient {name!r}")
    stamped = metadata.get("patient_birth_date")
    if stamped and born and stamped != born.isoformat():
        reasons.append(f"the images give birth date {stamped}")
    return "; ".join(reasons) or None

"""DICOM hygiene and metadata: preambles zeroed (CVE-2019-11687), headers read for review."""

from __future__ import annotations

import shutil
import unicodedata
import zipfile
from datetime import date
from pathlib import Path
from typing import Any

import pydicom

PREAMBLE = 128
_COPY_CHUNK = 1024 * 1024


def zero_preamble(path: Path) -> None:
    """A DICOM preamble is free-form and can hold an executable header (a polyglot)."""
    with path.open("r+b") as handle:
        handle.write(b"\0" * PREAMBLE)


def rewrite_zip_zeroing_preambles(source: Path, target: Path) -> None:
    """Copy an archive entry by entry, streamed, with every DICOM preamble zeroed."""
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            if info.is_dir():
                continue
            with src.open(info) as reader, dst.open(_clean_info(info), "w") as writer:
                reader.read(PREAMBLE)
                writer.write(b"\0" * PREAMBLE)
                shutil.copyfileobj(reader, writer, _COPY_CHUNK)


def _clean_info(info: zipfile.ZipInfo) -> zipfile.ZipInfo:
    clean = zipfile.ZipInfo(info.filename, date_time=info.date_time)
    clean.compress_type = zipfile.ZIP_DEFLATED
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


def read_file_metadata(path: Path) -> dict[str, Any]:
    dataset = pydicom.dcmread(path, stop_before_pixels=True)
    return {**header_of(dataset), "images": 1}


def read_zip_metadata(path: Path, entries: list[zipfile.ZipInfo]) -> dict[str, Any]:
    """The first entry's header, the set of modalities and the number of images."""
    modalities: set[str] = set()
    first: dict[str, Any] = {}
    with zipfile.ZipFile(path) as archive:
        for info in entries:
            with archive.open(info) as member:
                header = header_of(pydicom.dcmread(member, stop_before_pixels=True))
            first = first or header
            if header["modality"]:
                modalities.add(header["modality"])
    return {**first, "modalities": sorted(modalities), "images": len(entries)}


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

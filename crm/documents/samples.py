"""A small, real DICOM MR image: for the demo data and the tests (no patient's images)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid


def write_sample_mri(
    path: Path,
    given: str = "Jonas",
    family: str = "Weber",
    born: date | None = None,
    preamble: bytes = b"\0" * 128,
) -> Path:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = FileDataset(str(path), {}, file_meta=meta, preamble=preamble)
    dataset.SOPClassUID = MRImageStorage
    dataset.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    dataset.Modality = "MR"
    dataset.BodyPartExamined = "LSPINE"
    dataset.StudyDate = "20261101"
    dataset.StudyDescription = "MRI lumbar spine"
    dataset.PatientName = f"{family}^{given}"
    dataset.PatientID = "SAMPLE-1"
    if born is not None:
        dataset.PatientBirthDate = born.strftime("%Y%m%d")
    dataset.Rows = dataset.Columns = 4
    dataset.BitsAllocated = dataset.BitsStored = 8
    dataset.HighBit = 7
    dataset.SamplesPerPixel = 1
    dataset.PhotometricInterpretation = "MONOCHROME2"
    dataset.PixelRepresentation = 0
    dataset.PixelData = bytes(16)
    dataset.save_as(path, enforce_file_format=True)
    return path

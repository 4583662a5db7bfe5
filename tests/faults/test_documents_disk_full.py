"""The documents folder's filesystem fills up mid-upload: the uploader is told 507
problem+json, no partial file stays on the disk, no document row is written, and the next
upload that fits is taken without restarting anything.

A real full filesystem: a 1 MiB tmpfs mounted over the documents folder (root, or
CAP_SYS_ADMIN, is needed; the test says so and skips otherwise)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import postgres_only
from tests.faults.processes import Gunicorn, app_env
from tests.faults.support import PDF, multipart, scalar, submit

pytestmark = [pytest.mark.faults, postgres_only]


@pytest.fixture
def small_disk(tmp_path: Path):
    folder = tmp_path / "documents"
    folder.mkdir()
    mount = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a 1 MiB tmpfs here ({mount.stderr.strip()})")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_an_upload_that_fills_the_disk_is_507_and_leaves_no_file_and_no_row(
    seeded, small_disk, tmp_path
):
    env = app_env(seeded.url, tmp_path, DOCUMENTS_DIR=str(small_disk))
    web = Gunicorn(env, tmp_path / "gunicorn.log").start()
    try:
        referral = submit(web, seeded.agency)
        path = f"/api/v1/referrals/{referral['id']}/documents"
        big = PDF + os.urandom(3 * 2**20)  # three times the disk
        body, content_type = multipart({"kind": "medical_record"}, "scan.pdf", big)
        headers = seeded.agency.headers(**{"Content-Type": content_type})
        full = web.request("POST", path, body=body, headers=headers)

        assert full.status == 507, full.body
        assert full.headers["Content-Type"] == "application/problem+json"
        assert full.body["type"].endswith("/insufficient-storage")
        assert "Retry-After" in full.headers
        assert _files(small_disk) == []  # the partial temp file is gone
        assert scalar(seeded.url, "SELECT count(*) FROM documents") == 0

        body, content_type = multipart({"kind": "medical_record"}, "note.pdf", PDF * 100)
        headers = seeded.agency.headers(**{"Content-Type": content_type})
        fits = web.request("POST", path, body=body, headers=headers)
        assert fits.status == 201, fits.body
        assert scalar(seeded.url, "SELECT count(*) FROM documents") == 1
        assert len(_files(small_disk)) == 1
    finally:
        web.stop()

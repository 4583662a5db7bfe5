"""The answers the fault tests rely on, fast and without any process or PostgreSQL server:
an unreachable database is 503 problem+json with Retry-After, a full disk is 507, and any
other OS error stays a plain 500."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
from flask import Flask

from crm import create_app
from tests.conftest import ROOT
from tests.helpers import assert_problem

NOWHERE = "postgresql+psycopg://postgres@127.0.0.1:9/nothing"  # the discard port: refused


def _app(tmp_path: Path, database_url: str) -> Flask:
    return create_app(
        {
            "ENV": "test",
            "DATABASE_URL": database_url,
            "SECRET_KEY": "test-secret-key-that-is-long-enough-123",
            "CATALOGUE_FILE": str(ROOT / "config" / "procedures.toml"),
            "DOCUMENTS_DIR": str(tmp_path / "documents"),
            "LOG_LEVEL": "CRITICAL",
        }
    )


def test_a_request_while_the_database_is_unreachable_is_a_503_problem_with_retry_after(
    tmp_path,
):
    app = _app(tmp_path, NOWHERE)
    response = app.test_client().get(
        "/api/v1/procedures", headers={"Authorization": "Bearer crm_ak_00000000_x"}
    )
    body = assert_problem(response, 503, "database-unavailable")
    assert response.headers["Retry-After"] == "5"
    assert "Nothing was saved" in body["detail"]
    assert "127.0.0.1" not in response.get_data(as_text=True)  # no connection details


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_a_full_disk_under_a_request_is_a_507_problem(tmp_path, code):
    app = _app(tmp_path, f"sqlite:///{tmp_path / 'crm.sqlite3'}")

    @app.get("/test-only/full")
    def full():
        raise OSError(code, "No space left on device")

    response = app.test_client().get("/test-only/full")
    assert_problem(response, 507, "insufficient-storage")
    assert int(response.headers["Retry-After"]) > 0


def test_another_os_error_under_a_request_stays_a_500(tmp_path):
    app = _app(tmp_path, f"sqlite:///{tmp_path / 'crm.sqlite3'}")

    @app.get("/test-only/denied")
    def denied():
        raise PermissionError(errno.EACCES, "Permission denied", "/srv/secret")

    response = app.test_client().get("/test-only/denied")
    assert_problem(response, 500, "internal-error")
    assert "/srv/secret" not in response.get_data(as_text=True)

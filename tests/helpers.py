"""Assertions shared by the API tests."""

from __future__ import annotations

from typing import Any

from crm.core.errors import PROBLEM_MEDIA_TYPE, PROBLEM_TYPE_BASE

API = "/api/v1"


def assert_problem(response, status: int, code: str) -> dict[str, Any]:
    """An RFC 9457 problem of `status` and `code`, with no stack trace in it; returns the body."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM_MEDIA_TYPE
    body = response.get_json(force=True)
    assert body["type"] == PROBLEM_TYPE_BASE + code
    assert body["status"] == status
    assert isinstance(body["title"], str) and body["title"]
    text = response.get_data(as_text=True)
    assert "Traceback" not in text
    assert 'File "' not in text
    return body


def field_errors(body: dict[str, Any]) -> dict[str, str]:
    """{field: reason} of a 422 problem."""
    return {error["field"]: error["reason"] for error in body["errors"]}


def without_instance(body: dict[str, Any], *ids: int) -> dict[str, Any]:
    """A problem body with the request path and the given ids blanked, for comparing two."""
    blanked = {key: value for key, value in body.items() if key != "instance"}
    if "detail" in blanked:
        for referral_id in ids:
            blanked["detail"] = blanked["detail"].replace(str(referral_id), "<id>")
    return blanked

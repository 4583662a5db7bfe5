"""The README's signature verification snippet works against what the app signs, with the
current secret, with the old one during a rotation's overlap, and refuses a forgery."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

from crm.webhooks.signing import new_secret, signed_headers

README = Path(__file__).resolve().parents[2] / "README.md"


def _snippet(secret: str) -> dict:
    text = README.read_text()
    section = text.split("### Verifying a signature", 1)[1].split("\n### ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    namespace: dict = {"handled": []}
    code = code.replace('"whsec_..."', repr(secret))
    exec(code, namespace)  # noqa: S102 - the README's own example, run as written
    namespace["handle"] = lambda kind, data: namespace["handled"].append((kind, data))
    return namespace


def _signed(secrets: list[str]) -> tuple[bytes, dict[str, str]]:
    body = json.dumps({"type": "plan.accepted", "version": 1, "data": {"x": 1}}).encode()
    return body, signed_headers(secrets, "msg_TEST", datetime.now(UTC), body)


def test_the_readme_snippet_accepts_a_request_the_app_signed():
    secret = new_secret()
    snippet = _snippet(secret)
    assert snippet["receive"](*_signed([secret])) == 204
    assert snippet["handled"] == [("plan.accepted", {"x": 1})]


def test_a_receiver_still_on_the_old_secret_verifies_during_the_overlap():
    new, old = new_secret(), new_secret()
    assert _snippet(old)["receive"](*_signed([new, old])) == 204


def test_the_readme_snippet_refuses_a_body_signed_with_another_secret():
    assert _snippet(new_secret())["receive"](*_signed([new_secret()])) == 400

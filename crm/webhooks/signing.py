"""Signing a webhook the Standard Webhooks way, with the `standardwebhooks` package:
`webhook-id`, `webhook-timestamp` and `webhook-signature` (one `v1,<base64>` per secret
in force, space-separated, so a receiver holding either secret during a rotation's overlap
verifies)."""

from __future__ import annotations

import base64
import secrets as random
from collections.abc import Iterable
from datetime import datetime
from math import floor

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"  # noqa: S105 - the Standard Webhooks secret form
SECRET_BYTES = 32


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(random.token_bytes(SECRET_BYTES)).decode()


def signed_headers(
    secrets: Iterable[str], message_id: str, sent_at: datetime, body: bytes
) -> dict[str, str]:
    """The three headers for `body` sent at `sent_at`, signed by every secret given."""
    signatures = [Webhook(secret).sign(message_id, sent_at, body) for secret in secrets]
    if not signatures:
        raise ValueError("an endpoint always has a secret in force")
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(floor(sent_at.timestamp())),
        "webhook-signature": " ".join(signatures),
    }

"""What the patient's page sends back with an acceptance: the hidden fields it rendered."""

from __future__ import annotations

import re

_HIDDEN = re.compile(
    r'<input type="hidden" name="(plan_version|information_sha256)" value="([^"]*)"'
)


def shown_fields(client, page_url: str) -> dict[str, str]:
    """The plan version and the information's hash, as the page at `page_url` shows them."""
    body = client.get(page_url).get_data(as_text=True)
    return dict(_HIDDEN.findall(body))

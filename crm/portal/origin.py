"""Whether a post to the patient's page came from the page itself.

The portal has no CSRF token: the private link is the credential, and whoever holds it
can post from anywhere. A browser, though, says where a post comes from, and a form on
another website that a patient is lured to (which could hold their link, from a
forwarded message) must not act for them. So a post whose `Origin` (or, without one,
`Referer`) names another site is refused; `Origin: null` (a sandboxed frame, a `data:`
page, a page that hides its origin) too. A request naming neither (a non-browser client,
a privacy tool stripping both) is let through: the link alone decides, as before.

The portal's pages send `Referrer-Policy: same-origin` so that the browser names the
origin on our own posts (with `no-referrer` it sends `Origin: null` for a form post);
other sites still get no referrer, so the link never leaks to them.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from flask import current_app, request

_DEFAULT_PORTS = {"http": 80, "https": 443}


def _host_and_port(url: str) -> tuple[str, int] | None:
    try:
        parts = urlsplit(url)
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
    except ValueError:  # a port that is not a number
        return None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname or port is None:
        return None
    return parts.hostname.lower(), port


def same_site(origin: str | None, referer: str | None, own: Iterable[str]) -> bool:
    """Whether a post naming `origin`/`referer` comes from one of the `own` base URLs
    (compared by host and port, a missing port being the scheme's default)."""
    if origin is not None:
        claimed = origin
    elif referer:
        claimed = referer
    else:
        return True  # neither header: nothing to judge
    where = _host_and_port(claimed)
    if where is None:
        return False  # "null", or not a web address
    return where in {_host_and_port(url) for url in own}


def posted_from_here() -> bool:
    """Whether this request comes from our own pages. Our own address is the configured
    public URL and the Host this request was sent to, with either scheme (a proxy that ends
    TLS makes https look like http)."""
    own = (
        current_app.config["CRM"]["PUBLIC_BASE_URL"],
        f"http://{request.host}",
        f"https://{request.host}",
    )
    return same_site(request.headers.get("Origin"), request.headers.get("Referer"), own)

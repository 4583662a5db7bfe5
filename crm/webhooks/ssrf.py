"""Where a webhook may be sent: an https URL whose host resolves only to public addresses.

Checked when an endpoint is registered and again before every delivery (DNS can change
between the two); the delivery then connects to the address checked, so a second lookup
cannot swap it. Plain http, and loopback addresses, only when
CRM_WEBHOOKS_ALLOW_LOCALHOST is on (development and the tests).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

LOCAL_NAMES = {"localhost", "127.0.0.1", "::1"}
# Cloud metadata services answer on these; they are link-local or private already, named
# here so the refusal says why.
METADATA_ADDRESSES = {"169.254.169.254", "fd00:ec2::254", "100.100.100.200"}


class UnsafeWebhookUrl(ValueError):
    """The reason, in words for the agency's developer."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    addresses: tuple[str, ...]


def check_url_form(url: str, *, allow_localhost: bool) -> tuple[str, str, int]:
    """The scheme, host and port of a well-formed webhook URL; no DNS lookup."""
    if len(url) > 2000:
        raise UnsafeWebhookUrl("is longer than 2000 characters")
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    if parts.scheme not in {"https", "http"} or not host:
        raise UnsafeWebhookUrl("must be an absolute https:// URL")
    if parts.username or parts.password:
        raise UnsafeWebhookUrl("must not carry a user name or password")
    local = host in LOCAL_NAMES
    if parts.scheme == "http" and not (allow_localhost and local):
        raise UnsafeWebhookUrl("must use https (plain http only to localhost in development)")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise UnsafeWebhookUrl("has an invalid port") from exc
    return parts.scheme, host, port


def _refusal(address: str, allow_localhost: bool) -> str | None:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if str(ip) in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if ip.is_loopback:
        return None if allow_localhost else "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_private or ip.is_reserved or ip.is_multicast or ip.is_unspecified:
        return "a private or reserved address"
    if not ip.is_global:
        return "an address that is not public"
    return None


def resolve_target(url: str, *, allow_localhost: bool) -> Target:
    """Checks the URL's form, resolves its host and checks every address it has."""
    scheme, host, port = check_url_form(url, allow_localhost=allow_localhost)
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeWebhookUrl(f"host {host!r} does not resolve") from exc
    addresses = tuple(dict.fromkeys(str(info[4][0]) for info in found))
    for address in addresses:
        why = _refusal(address, allow_localhost)
        if why is not None:
            raise UnsafeWebhookUrl(f"host {host!r} resolves to {address}, {why}")
    if not addresses:
        raise UnsafeWebhookUrl(f"host {host!r} has no address")
    return Target(scheme, host, port, addresses)

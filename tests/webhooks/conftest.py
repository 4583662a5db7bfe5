"""Fixtures of the webhook tests: DNS answered from a table (no lookup leaves the machine)."""

from __future__ import annotations

import ipaddress
import socket

import pytest

PUBLIC_ADDRESS = "93.184.216.34"  # a global address; nothing is ever sent to it


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Every host resolves to a public address unless the test maps it elsewhere:
    `dns["sneaky.example"] = "127.0.0.1"`."""
    table: dict[str, str] = {"localhost": "127.0.0.1"}

    def fake_getaddrinfo(host, port, *args, **kwargs):
        try:
            address = str(ipaddress.ip_address(host))  # a literal address is itself
        except ValueError:
            address = table.get(host, PUBLIC_ADDRESS)
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr("crm.webhooks.ssrf.socket.getaddrinfo", fake_getaddrinfo)
    return table

"""Fixtures for the messaging tests: the fake Twilio server and local SMTP servers.

Everything listens on 127.0.0.1 only; nothing here contacts an outside host.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from crm.messaging.delivery.sms import TwilioGateway
from tests.fakes.twilio_server import FakeTwilio, running_fake_twilio

SMTP_USER, SMTP_PASSWORD = "mailer", "s3cret-for-tests"
FROM_NUMBER = "+15005550006"


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilio]:
    with running_fake_twilio() as fake:
        yield fake


@pytest.fixture
def twilio_gateway(fake_twilio: FakeTwilio) -> Iterator[TwilioGateway]:
    """A gateway sending from a number, through the real SDK, to the fake server."""
    with TwilioGateway(
        fake_twilio.account_sid,
        fake_twilio.auth_token or "",
        from_number=FROM_NUMBER,
        timeout=2.0,
        base_url=fake_twilio.base_url,
    ) as gateway:
        yield gateway


@dataclass
class SmtpRecorder:
    """aiosmtpd handler keeping every accepted envelope; some recipients are refused."""

    envelopes: list[Envelope] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)

    async def handle_RCPT(
        self, server: Any, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted"


@dataclass
class SmtpServer:
    host: str
    port: int
    recorder: SmtpRecorder
    client_context: ssl.SSLContext | None = None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _authenticate(
    server: Any, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (
        auth_data.login.decode(),
        auth_data.password.decode(),
    ) == (SMTP_USER, SMTP_PASSWORD)
    return AuthResult(success=ok, handled=False)  # unhandled: aiosmtpd answers 535


@contextmanager
def _running_smtp(recorder: SmtpRecorder, **kwargs: Any) -> Iterator[int]:
    port = _free_port()
    controller = Controller(
        recorder, hostname="127.0.0.1", port=port, authenticator=_authenticate, **kwargs
    )
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (made with the openssl command)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def _server_context(tls_files: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*tls_files)
    return context


@pytest.fixture
def client_tls_context(tls_files: tuple[Path, Path]) -> ssl.SSLContext:
    """A client context that trusts the test certificate and checks the host name."""
    return ssl.create_default_context(cafile=str(tls_files[0]))


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """Plain SMTP (no TLS) accepting the test login."""
    recorder = SmtpRecorder()
    with _running_smtp(recorder, auth_require_tls=False) as port:
        yield SmtpServer("127.0.0.1", port, recorder)


@pytest.fixture
def smtp_starttls_server(
    tls_files: tuple[Path, Path], client_tls_context: ssl.SSLContext
) -> Iterator[SmtpServer]:
    """SMTP that refuses mail until the client has upgraded with STARTTLS."""
    recorder = SmtpRecorder()
    context = _server_context(tls_files)
    with _running_smtp(recorder, tls_context=context, require_starttls=True) as port:
        yield SmtpServer("127.0.0.1", port, recorder, client_tls_context)


@pytest.fixture
def smtp_tls_server(
    tls_files: tuple[Path, Path], client_tls_context: ssl.SSLContext
) -> Iterator[SmtpServer]:
    """SMTP over implicit TLS (SMTPS)."""
    recorder = SmtpRecorder()
    with _running_smtp(recorder, ssl_context=_server_context(tls_files)) as port:
        yield SmtpServer("127.0.0.1", port, recorder, client_tls_context)

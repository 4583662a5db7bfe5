"""A real webhook receiver on 127.0.0.1 for tests and the benchmark; it never leaves the machine.

A threaded `http.server` on a random port. Every POST is checked with the Standard
Webhooks package's own verifier, `standardwebhooks.Webhook(secret).verify(body, headers)`,
once per secret the receiver holds (both, during a rotation's overlap), and recorded as
`Received(id, body, verified, ...)` whatever the mode answers. Modes:

- `ok`: 200 at once;
- `slow`: sleeps `delay` seconds, then 200;
- `failing`: 500;
- `gone`: 410 Gone;
- `redirecting`: 302 to `/moved` (a request reaching `/moved` is recorded too, so a
  client that followed would show);
- `throttled`: 429 with `Retry-After: <retry_after>`;
- `flaky`: the first request of each webhook-id gets 503 with `Retry-After`, the next ones
  200 (the benchmark's failing receiver: exactly one retry asked for per event).

`mode` can be changed while it runs. `GET /_received` answers the records as JSON, for a
receiver run in its own process: `python -m tests.fakes.webhook_receiver --secret whsec_...
--mode slow --delay 0.05` prints its URL on the first line and serves until killed.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook

MODES = ("ok", "slow", "failing", "gone", "redirecting", "throttled", "flaky")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the benchmark's dispatchers open many connections at once


@dataclass(frozen=True)
class Received:
    id: str
    body: bytes
    verified: bool  # every secret the receiver holds verified it
    answered: int
    path: str
    at: float  # time.monotonic() when it arrived
    error: str | None = None
    headers: tuple[tuple[str, str], ...] = ()

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


class WebhookReceiver:
    def __init__(
        self,
        secrets: str | list[str],
        mode: str = "ok",
        delay: float = 0.5,
        retry_after: str = "1",
    ) -> None:
        self.secrets = [secrets] if isinstance(secrets, str) else list(secrets)
        self.mode = mode
        self.delay = delay
        self.retry_after = retry_after
        self._records: list[Received] = []
        self._seen: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hooks"

    @property
    def received(self) -> list[Received]:
        with self._lock:
            return list(self._records)

    def ids(self) -> list[str]:
        return [r.id for r in self.received if r.path == "/hooks"]

    def start(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def verify(self, body: bytes, headers: dict[str, str]) -> tuple[bool, str | None]:
        for secret in self.secrets:
            try:
                Webhook(secret).verify(body, headers)
            except Exception as exc:  # the verifier's own error, recorded
                return False, f"{type(exc).__name__}: {exc}"
        return True, None

    def answer(self, message_id: str) -> tuple[int, dict[str, str]]:
        """The status and headers this receiver's mode gives; counts each id's requests."""
        with self._lock:
            self._seen[message_id] += 1
            first = self._seen[message_id] == 1
        mode = self.mode
        if mode == "slow":
            time.sleep(self.delay)
        if mode == "failing":
            return 500, {}
        if mode == "gone":
            return 410, {}
        if mode == "redirecting":
            return 302, {"Location": "/moved"}
        if mode == "throttled":
            return 429, {"Retry-After": self.retry_after}
        if mode == "flaky" and first:
            return 503, {"Retry-After": self.retry_after}
        return 200, {}

    def record(self, received: Received) -> None:
        with self._lock:
            self._records.append(received)


def _handler(receiver: WebhookReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_args) -> None:  # quiet: the records are the log
            pass

        def _send(self, status: int, headers: dict[str, str], body: bytes = b"") -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            records = [
                {**asdict(r), "body": r.body.decode(), "headers": dict(r.headers)}
                for r in receiver.received
            ]
            self._send(200, {"Content-Type": "application/json"}, json.dumps(records).encode())

        def do_POST(self) -> None:
            arrived = time.monotonic()
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {name.lower(): value for name, value in self.headers.items()}
            verified, error = receiver.verify(body, headers)
            message_id = headers.get("webhook-id", "")
            status, extra = receiver.answer(message_id) if self.path == "/hooks" else (200, {})
            receiver.record(
                Received(
                    message_id,
                    body,
                    verified,
                    status,
                    self.path,
                    arrived,
                    error,
                    tuple(headers.items()),
                )
            )
            self._send(status, extra)

    return Handler


@contextmanager
def running_receiver(secrets: str | list[str], **options) -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(secrets, **options).start()
    try:
        yield receiver
    finally:
        receiver.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--secret", action="append", required=True)
    parser.add_argument("--mode", choices=MODES, default="ok")
    parser.add_argument("--delay", type=float, default=0.5)
    parser.add_argument("--retry-after", default="1")
    args = parser.parse_args(argv)
    receiver = WebhookReceiver(
        args.secret, mode=args.mode, delay=args.delay, retry_after=args.retry_after
    )
    print(receiver.url, flush=True)
    sys.stdout.close()
    receiver._server.serve_forever()


if __name__ == "__main__":
    main()

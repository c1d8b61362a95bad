"""A real webhook receiver on 127.0.0.1, as an integrator would write one.

It checks each signature with its own HMAC code (not ``billbyte.webhooks.signing``), answers
400 to a bad signature, and otherwise whatever its ``plan`` says.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    signature_valid: bool
    timestamp: int | None
    answered: int

    @property
    def payload(self) -> dict[str, Any]:
        return dict(json.loads(self.body))

    @property
    def event_id(self) -> str:
        return self.headers["billbyte-event-id"]


def check_signature(secret: str, header: str, body: bytes) -> tuple[bool, int | None]:
    """``t=<unix>,v1=<hex>``: HMAC-SHA256 keyed with the secret over ``b"<t>." + body``."""
    fields: dict[str, list[str]] = {}
    for part in header.split(","):
        name, _, value = part.partition("=")
        fields.setdefault(name.strip(), []).append(value.strip())
    if len(fields.get("t", [])) != 1 or not fields.get("v1"):
        return False, None
    stamp = fields["t"][0]
    if not stamp.isdigit():
        return False, None
    expected = hmac.new(secret.encode("utf-8"), stamp.encode() + b"." + body, hashlib.sha256)
    valid = any(hmac.compare_digest(expected.hexdigest(), v) for v in fields["v1"])
    return valid, int(stamp)


Plan = Callable[[str, dict[str, str], bytes], int]


class Receiver:
    def __init__(self) -> None:
        self.secrets: dict[str, str] = {}  # path -> signing secret
        self.received: list[Received] = []
        self.plan: Plan = lambda path, headers, body: 200
        self.delay = 0.0
        self.arrived = threading.Event()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def url(self, name: str) -> str:
        return f"{self.base_url}/hooks/{name}"

    def at(self, name: str) -> list[Received]:
        return [r for r in self.received if r.path == f"/hooks/{name}"]

    def fail_first(self, failures: int, status: int = 500) -> None:
        """Each event is refused ``failures`` times, then accepted."""
        seen: dict[str, int] = {}

        def plan(path: str, headers: dict[str, str], body: bytes) -> int:
            key = path + " " + headers.get("billbyte-event-id", "")
            seen[key] = seen.get(key, 0) + 1
            return status if seen[key] <= failures else 200

        self.plan = plan

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                secret = receiver.secrets.get(self.path)
                valid, stamp = (
                    check_signature(secret, headers.get("billbyte-signature", ""), body)
                    if secret
                    else (False, None)
                )
                if receiver.delay:
                    time.sleep(receiver.delay)
                with receiver._lock:
                    status = receiver.plan(self.path, headers, body) if valid else 400
                    receiver.received.append(
                        Received(self.path, headers, body, valid, stamp, status)
                    )
                reply = b"nope" if status >= 300 else b"ok"
                self.send_response(status)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)
                receiver.arrived.set()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


@contextmanager
def running_receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()

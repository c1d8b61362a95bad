"""What the vendor simulators (Partner Center, Cloud Channel) share: exact Decimal JSON,
failure injection, the ``/_sandbox`` control endpoints, serving a simulator with uvicorn in a
thread, and a few clock and token helpers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from email.utils import format_datetime
from typing import Any, Protocol

import uvicorn
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from billbyte.kit.money import format_amount

# Every simulated vendor request, at DEBUG (BILLBYTE_LOG_LEVEL=DEBUG shows them): at INFO they
# would bury what `serve --sandbox` prints for a person among a line per request.
request_log = logging.getLogger("billbyte.sandbox.requests")

# The sandboxes' fixed exchange rates from the USD list prices to the simulated currency.
USD_TO = {"USD": Decimal(1), "EUR": Decimal("0.9342"), "GBP": Decimal("0.7861")}


# --- exact JSON ----------------------------------------------------------------------------

_DECIMAL_MARK = "\u0000dec:"
_DECIMAL_TOKEN = re.compile(r'"\\u0000dec:(-?[0-9]+(?:\.[0-9]+)?)"')


def _mark_decimals(value: Any) -> Any:
    if isinstance(value, Decimal):
        return _DECIMAL_MARK + format_amount(value)
    if isinstance(value, dict):
        return {k: _mark_decimals(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mark_decimals(v) for v in value]
    return value


def dumps_exact(value: Any, *, indent: int | None = None) -> str:
    """JSON text in which every ``Decimal`` is written as a JSON number with its exact digits
    (no float, no exponent): ``Decimal("30.7197334080551")`` → ``30.7197334080551``."""
    text = json.dumps(_mark_decimals(value), indent=indent, ensure_ascii=False)
    return _DECIMAL_TOKEN.sub(r"\1", text)


class ExactJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return dumps_exact(content).encode("utf-8")


# --- failure injection ---------------------------------------------------------------------


@dataclass
class Fault:
    """One planned failure, answered to the next ``count`` matching calls.

    ``kind``: ``status`` (answer ``status`` with the vendor's error body; 429 carries
    ``Retry-After``) or ``hang`` (hold the call ``seconds`` then answer 504 without doing
    anything, or do it anyway when ``apply`` — the "it worked but the answer was lost" case).
    ``path`` is a regular expression searched in the request path; ``method`` an HTTP verb.
    """

    kind: str
    count: int = 1
    status: int = 500
    retry_after: int = 1
    seconds: float = 5.0
    apply: bool = False
    path: str | None = None
    method: str | None = None

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method.upper() != method.upper():
            return False
        return not self.path or re.search(self.path, path) is not None


class FaultPlan:
    """A settable list of failures for the next calls (thread-safe). The ``/_sandbox``
    control endpoints are never affected."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self.injected: list[tuple[str, str, str]] = []  # (method, path, what) for tests

    def add(self, fault: Fault) -> Fault:
        if fault.kind not in ("status", "hang"):
            raise ValueError(f"unknown fault kind {fault.kind!r}")
        with self._lock:
            self._faults.append(fault)
        return fault

    def throttle(self, count: int = 1, retry_after: int = 1, path: str | None = None) -> Fault:
        return self.add(Fault("status", count, 429, retry_after=retry_after, path=path))

    def fail(self, count: int = 1, status: int = 500, path: str | None = None) -> Fault:
        return self.add(Fault("status", count, status, path=path))

    def hang(
        self, count: int = 1, seconds: float = 5.0, path: str | None = None, apply: bool = False
    ) -> Fault:
        return self.add(Fault("hang", count, 504, seconds=seconds, path=path, apply=apply))

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def pending(self) -> int:
        with self._lock:
            return sum(f.count for f in self._faults)

    def take(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.count > 0 and fault.matches(method, path):
                    fault.count -= 1
                    if fault.count == 0:
                        self._faults.remove(fault)
                    label = f"{fault.status}" if fault.kind == "status" else "hang"
                    self.injected.append((method, path, label))
                    return fault
        return None

    def describe(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(f.__dict__) for f in self._faults]


ErrorBody = Callable[[int, str], dict[str, Any]]


def install_faults(
    app: FastAPI, plan: FaultPlan, error_body: ErrorBody, clock: Callable[[], datetime]
) -> None:
    """Answer planned failures before routing (the token endpoint included), and date every
    response with the simulated clock (the ``Date`` header: the vendor's "now")."""

    async def answer(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        path = request.url.path
        fault = None if path.startswith("/_sandbox") else plan.take(request.method, path)
        if fault is None:
            return await call_next(request)
        if fault.kind == "hang":
            await asyncio.sleep(fault.seconds)
            if fault.apply:
                return await call_next(request)
            return ExactJSONResponse(error_body(504, "Gateway timeout (injected)"), 504)
        headers = {"Retry-After": str(fault.retry_after)} if fault.status == 429 else {}
        message = "Too many requests (injected)" if fault.status == 429 else "Injected failure"
        return ExactJSONResponse(error_body(fault.status, message), fault.status, headers)

    @app.middleware("http")
    async def _sandbox(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await answer(request, call_next)
        request_log.debug(
            "%s %s %s -> %d",
            request.url.port,
            request.method,
            request.url.path,
            response.status_code,
        )
        response.headers["Date"] = format_datetime(clock().astimezone(UTC), usegmt=True)
        return response


class Simulator(Protocol):
    faults: FaultPlan
    now: datetime

    def tick(self, now: datetime | None = None) -> None: ...

    def summary(self) -> dict[str, Any]: ...


def control_router(simulator: Simulator) -> APIRouter:
    """``/_sandbox``: state, clock and fault plan, for demos and BSS integration tests.
    Not part of any vendor API and not authenticated (the sandbox listens on 127.0.0.1)."""
    router = APIRouter(prefix="/_sandbox", include_in_schema=False)

    @router.get("/state")
    def state() -> Response:
        return ExactJSONResponse(
            {"now": iso_z(simulator.now), "faults": simulator.faults.describe()}
            | simulator.summary()
        )

    @router.post("/tick")
    async def tick(request: Request) -> Response:
        body = await _json_body(request)
        now = body.get("now")
        simulator.tick(parse_instant(now) if now else None)
        return ExactJSONResponse({"now": iso_z(simulator.now)})

    @router.post("/faults")
    async def add_fault(request: Request) -> Response:
        body = await _json_body(request)
        kind = {"throttle": "status", "error": "status"}.get(body.get("kind", ""), body.get("kind"))
        status = 429 if body.get("kind") == "throttle" else int(body.get("status", 500))
        try:
            fault = simulator.faults.add(
                Fault(
                    kind=str(kind),
                    count=int(body.get("count", 1)),
                    status=status,
                    retry_after=int(body.get("retry_after", 1)),
                    seconds=float(body.get("seconds", 5.0)),
                    apply=bool(body.get("apply", False)),
                    path=body.get("path"),
                    method=body.get("method"),
                )
            )
        except (TypeError, ValueError) as exc:
            return ExactJSONResponse({"error": str(exc)}, 400)
        return ExactJSONResponse(dict(fault.__dict__), 201)

    @router.delete("/faults")
    def clear_faults() -> Response:
        simulator.faults.clear()
        return Response(status_code=204)

    return router


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw, parse_float=Decimal)
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


# --- running a simulator -------------------------------------------------------------------


def _quiet_protocol() -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol without its access log: uvicorn decides per connection from the
    shared ``uvicorn.access`` logger, so the API server beside the sandboxes (``serve
    --sandbox``) would otherwise log every simulated request at INFO. ``request_log`` logs
    them at DEBUG instead."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as Base
    except ImportError:  # httptools is optional
        from uvicorn.protocols.http.h11_impl import H11Protocol as Base  # type: ignore[assignment]

    class Quiet(Base):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.access_log = False

    return Quiet


_QuietHttp = _quiet_protocol()


class SandboxServer:
    """A simulator served by uvicorn in a daemon thread on 127.0.0.1.

    ``app`` is the simulator (its state, ``faults``, ``tick``); ``asgi`` the FastAPI app.
    """

    def __init__(self, simulator: Any, asgi: FastAPI, port: int | None = None) -> None:
        self.app = simulator
        self.asgi = asgi
        # proto=IPPROTO_TCP: asyncio then sets TCP_NODELAY on accepted connections (else
        # Nagle + delayed ACKs add ~40 ms to every keep-alive request).
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", port or 0))
        self.port: int = self._socket.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            asgi,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=1,
            access_log=False,
            http=_QuietHttp,
            date_header=False,  # the simulator dates its responses with its own clock
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._socket]},
            name=f"sandbox-{self.port}",
            daemon=True,
        )

    def start(self) -> SandboxServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"sandbox on port {self.port} did not start")
            time.sleep(0.01)
        return self

    def tick(self, now: datetime | None = None) -> None:
        self.app.tick(now)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)
        self._socket.close()

    def __enter__(self) -> SandboxServer:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


# --- small helpers -------------------------------------------------------------------------


def iso_z(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_instant(text: str) -> datetime:
    parsed = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer …`` header, or None."""
    header = request.headers.get("authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else None

"""ASGI middleware: spools the request body (bounded memory), hashes it, and either runs
the request once or replays the stored response."""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import timedelta
from typing import Any

from anyio import to_thread

from billbyte.auth.subject import AuthSubject, authenticate
from billbyte.idempotency import service
from billbyte.idempotency.lease import LeaseKeeper
from billbyte.kit.crypto import decrypt_json, encrypt_json
from billbyte.kit.errors import BillByteError
from billbyte.runtime import Runtime

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_REPLAYED_HEADERS = ("content-type", "location")
MAX_KEY_LENGTH = 255


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


async def _send_problem(send: Send, status: int, code: str, detail: str) -> None:
    body = json.dumps(
        {
            "type": f"https://billbyte.dev/problems/{code}",
            "title": code.replace("_", " ").capitalize(),
            "status": status,
            "code": code,
            "detail": detail,
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime

    @property
    def _lease(self) -> timedelta:
        return timedelta(seconds=self.runtime.settings.idempotency_lease_seconds)

    def _subject_for(self, token: str | None) -> AuthSubject | None:
        try:
            with self.runtime.uow() as uow:
                return authenticate(uow.session, token)
        except BillByteError:
            return None  # the endpoint itself answers 401

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = _header(scope, b"idempotency-key") if scope["type"] == "http" else None
        if scope["type"] != "http" or scope["method"] != "POST" or key is None:
            await self.app(scope, receive, send)
            return
        if not key or len(key) > MAX_KEY_LENGTH:
            await _send_problem(
                send,
                400,
                "invalid_idempotency_key",
                f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters.",
            )
            return
        auth = _header(scope, b"authorization") or ""
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        # Keys are scoped to the caller: a stored response is only ever shown to the API key
        # (with the role) that made the request, so it cannot bypass another key's role check.
        subject = await to_thread.run_sync(self._subject_for, token)
        if subject is None:
            await self.app(scope, receive, send)
            return

        spool = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115
        query = scope.get("query_string", b"").decode()
        digest = hashlib.sha256(f"{scope['method']} {scope['path']}?{query}\n".encode())
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                spool.close()
                return
            chunk = message.get("body", b"")
            spool.write(chunk)
            if not message.get("more_body", False):
                break
        spool.seek(0)

        boundary = _multipart_boundary(_header(scope, b"content-type"))
        await to_thread.run_sync(_hash_body, spool, digest, boundary)
        claim = await to_thread.run_sync(self._claim, subject, key, digest.hexdigest())
        if claim.outcome == "mismatch":
            spool.close()
            await _send_problem(
                send,
                422,
                "idempotency_key_reused",
                "This Idempotency-Key was used with a different request.",
            )
            return
        if claim.outcome == "in_progress":
            spool.close()
            await _send_problem(
                send,
                409,
                "idempotency_request_in_progress",
                "A request with this Idempotency-Key is still running.",
            )
            return
        if claim.outcome == "replay":
            spool.close()
            body = self._open(claim.body).encode()
            headers = [(k.encode(), v.encode()) for k, v in (claim.headers or {}).items()]
            headers += [
                (b"idempotent-replayed", b"true"),
                (b"content-length", str(len(body)).encode()),
            ]
            await send(
                {"type": "http.response.start", "status": claim.status or 200, "headers": headers}
            )
            await send({"type": "http.response.body", "body": body})
            return

        async def replay_receive() -> Message:
            chunk = spool.read(1024 * 1024)
            return {"type": "http.request", "body": chunk, "more_body": spool.tell() < _size(spool)}

        captured: dict[str, Any] = {"status": 500, "headers": {}, "body": bytearray()}

        async def capture_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                captured["status"] = message["status"]
                captured["headers"] = {
                    k.decode().lower(): v.decode()
                    for k, v in message.get("headers", [])
                    if k.decode().lower() in _REPLAYED_HEADERS
                }
            elif message["type"] == "http.response.body":
                captured["body"].extend(message.get("body", b""))
            await send(message)

        assert claim.record_id is not None
        keeper = LeaseKeeper(self.runtime, claim.record_id, self._lease)
        keeper.start()
        try:
            await self.app(scope, replay_receive, capture_send)
        except BaseException:
            await to_thread.run_sync(self._release, claim.record_id)
            raise
        finally:
            keeper.stop()
            spool.close()
        if not 200 <= captured["status"] < 300:
            # Only successes are stored: a refusal or an error is answered afresh, so that a
            # corrected retry (or a key allowed to do it) proceeds.
            await to_thread.run_sync(self._release, claim.record_id)
        else:
            await to_thread.run_sync(
                self._complete,
                claim.record_id,
                captured["status"],
                captured["headers"],
                bytes(captured["body"]).decode(),
            )

    def _claim(self, subject: AuthSubject, key: str, request_hash: str) -> service.Claim:
        with self.runtime.uow() as uow:
            result = service.claim(uow.session, subject, key, request_hash, self._lease)
            uow.commit()
            return result

    def _complete(self, record_id: str, status: int, headers: dict[str, str], body: str) -> None:
        # Stored encrypted: a response may hold a secret shown once (a new API key).
        sealed = encrypt_json(self.runtime.secret_key, {"body": body})
        with self.runtime.uow() as uow:
            service.complete(uow.session, record_id, status, headers, sealed)
            uow.commit()

    def _open(self, sealed: str | None) -> str:
        if not sealed:
            return ""
        return str(decrypt_json(self.runtime.secret_key, sealed)["body"])

    def _release(self, record_id: str) -> None:
        with self.runtime.uow() as uow:
            service.release(uow.session, record_id)
            uow.commit()


def _size(spool: Any) -> int:
    position = spool.tell()
    spool.seek(0, 2)
    end = int(spool.tell())
    spool.seek(position)
    return end


def _multipart_boundary(content_type: str | None) -> bytes | None:
    if not content_type or not content_type.lower().startswith("multipart/"):
        return None
    for part in content_type.split(";"):
        name, _, value = part.strip().partition("=")
        if name.lower() == "boundary" and value:
            return value.strip('"').encode("latin-1")
    return None


def _hash_body(spool: Any, digest: Any, boundary: bytes | None) -> None:
    """Hash the spooled body; a multipart boundary is random per request, so it is
    replaced by a constant to compare what the client actually sent."""
    spool.seek(0)
    carry = b""
    keep = len(boundary) - 1 if boundary else 0
    while True:
        chunk = spool.read(1024 * 1024)
        data = carry + chunk
        if boundary:
            data = data.replace(boundary, b"<boundary>")
        if not chunk:
            digest.update(data)
            break
        # Hold back a boundary's length minus one, in case one straddles two chunks.
        cut = max(len(data) - keep, 0)
        digest.update(data[:cut])
        carry = data[cut:]
    spool.seek(0)

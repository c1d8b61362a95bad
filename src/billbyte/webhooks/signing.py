"""The ``BillByte-Signature`` header: HMAC-SHA256 over ``"<timestamp>.<body>"``.

``BillByte-Signature: t=1767225600,v1=5257a869e7ec...``

``t`` is the Unix time of the attempt; ``v1`` is the hex HMAC-SHA256 of the UTF-8 bytes
``f"{t}.{body}"`` keyed with the endpoint's whole secret (``whsec_...``) as UTF-8 bytes.
Signing the timestamp lets a receiver refuse old messages replayed by an eavesdropper.
Receivers should accept any ``v1`` that matches, so a secret can be rolled over later by
sending two signatures.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

from billbyte.kit.clock import utcnow

HEADER = "BillByte-Signature"
SCHEME = "v1"
SECRET_PREFIX = "whsec_"
DEFAULT_TOLERANCE_SECONDS = 300

__all__ = [
    "DEFAULT_TOLERANCE_SECONDS",
    "HEADER",
    "SECRET_PREFIX",
    "new_secret",
    "sign",
    "signature_header",
    "verify",
]


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def _bytes(body: bytes | str) -> bytes:
    return body.encode() if isinstance(body, str) else body


def sign(secret: str, timestamp: int, body: bytes | str) -> str:
    """Hex HMAC-SHA256 of ``"<timestamp>.<body>"`` keyed with ``secret``."""
    message = str(timestamp).encode() + b"." + _bytes(body)
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes | str) -> str:
    return f"t={timestamp},{SCHEME}={sign(secret, timestamp, body)}"


def _unix(now: datetime | float | None) -> float:
    if now is None:
        return utcnow().timestamp()
    if isinstance(now, datetime):
        return now.timestamp()
    return float(now)


def verify(
    secret: str,
    header: str | None,
    body: bytes | str,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
    now: datetime | float | None = None,
) -> bool:
    """True if ``header`` signs exactly ``body`` with ``secret`` at a time within
    ``tolerance_seconds`` of ``now`` (a datetime or Unix seconds; default: the clock).

    Pass the raw request body as received, before any JSON parsing: re-serialising changes
    the bytes and the signature no longer matches.
    """
    if not header:
        return False
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                return False
        elif key == SCHEME:
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    if abs(_unix(now) - timestamp) > tolerance_seconds:
        return False
    expected = sign(secret, timestamp, body)
    # Compare against every candidate without short-circuiting on the first mismatch.
    matches = [hmac.compare_digest(expected, candidate) for candidate in candidates]
    return any(matches)

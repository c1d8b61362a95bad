"""``signing.verify``, what integrators use to check a delivery, against independent HMACs."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

from billbyte.webhooks.signing import new_secret, signature_header, verify

SECRET = "whsec_test_secret"
BODY = b'{"id":"evt_1","type":"test.ping","created_at":"2030-01-01T00:00:00Z","data":{}}'
T = 1_893_456_000  # 2030-01-01T00:00:00Z


def _header(secret: str, t: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), str(t).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def test_a_correct_signature_verifies() -> None:
    header = _header(SECRET, T, BODY)
    assert signature_header(SECRET, T, BODY) == header
    assert verify(SECRET, header, BODY, now=T)
    assert verify(SECRET, header, BODY.decode(), now=datetime(2030, 1, 1, tzinfo=UTC))
    assert verify(SECRET, header, BODY, now=T + 300)


def test_a_tampered_body_fails() -> None:
    header = _header(SECRET, T, BODY)
    assert not verify(SECRET, header, BODY.replace(b"test.ping", b"test.pong"), now=T)
    assert not verify(SECRET, header, BODY + b" ", now=T)


def test_an_old_or_future_timestamp_fails() -> None:
    header = _header(SECRET, T, BODY)
    assert not verify(SECRET, header, BODY, now=T + 301)
    assert not verify(SECRET, header, BODY, now=T - 301)
    assert verify(SECRET, header, BODY, tolerance_seconds=3600, now=T + 3000)


def test_a_changed_timestamp_with_the_old_signature_fails() -> None:
    mac = _header(SECRET, T, BODY).split("v1=")[1]
    assert not verify(SECRET, f"t={T + 60},v1={mac}", BODY, now=T + 60)


def test_wrong_secret_or_malformed_headers_fail() -> None:
    header = _header(SECRET, T, BODY)
    assert not verify("whsec_other", header, BODY, now=T)
    for bad in (None, "", "v1=abc", f"t={T}", f"t=soon,{header.split(',')[1]}", "garbage"):
        assert not verify(SECRET, bad, BODY, now=T)


def test_any_matching_v1_is_enough() -> None:
    good = _header(SECRET, T, BODY).split(",")[1]
    assert verify(SECRET, f"t={T},v1={'0' * 64},{good}", BODY, now=T)


def test_secrets_are_prefixed_and_random() -> None:
    first, second = new_secret(), new_secret()
    assert first.startswith("whsec_") and len(first) >= 40 and first != second

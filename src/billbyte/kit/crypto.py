"""Encryption of stored secrets (vendor credentials, webhook secrets, stored idempotent
responses) and hashing of API key secrets.

The configured secret key is a *key ring*: one key, or several separated by commas. The
first encrypts; every key decrypts. That is what lets an operator rotate the key without
downtime (see ``billbyte secrets rotate`` and docs/security.md).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

KEY_SEPARATOR = ","


def ring_keys(secret_key: str) -> list[str]:
    """The keys of a key ring, primary first; blanks around commas are ignored."""
    keys = [part.strip() for part in secret_key.split(KEY_SEPARATOR)]
    keys = [key for key in keys if key]
    if not keys:
        raise ValueError("the secret key is empty")
    return keys


def _fernet(one_key: str) -> Fernet:
    # Derive a Fernet key from the operator's secret so any string can be used.
    digest = hashlib.sha256(("billbyte-credentials:" + one_key).encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


@lru_cache(maxsize=16)
def _ring(secret_key: str) -> MultiFernet:
    return MultiFernet([_fernet(key) for key in ring_keys(secret_key)])


@lru_cache(maxsize=16)
def _primary(secret_key: str) -> Fernet:
    return _fernet(ring_keys(secret_key)[0])


def encrypt_json(secret_key: str, payload: dict[str, Any]) -> str:
    return _ring(secret_key).encrypt(json.dumps(payload, sort_keys=True).encode()).decode()


def decrypt_json(secret_key: str, token: str) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(_ring(secret_key).decrypt(token.encode()))
    except InvalidToken:
        raise ValueError("stored credentials cannot be decrypted with this secret key") from None
    return data


def reencrypt(secret_key: str, token: str) -> str | None:
    """The token re-encrypted under the ring's primary key, or None if it already is.

    Raises ValueError if no key of the ring can decrypt it."""
    try:
        _primary(secret_key).decrypt(token.encode())
        return None
    except InvalidToken:
        pass
    try:
        return _ring(secret_key).rotate(token.encode()).decode()
    except InvalidToken:
        raise ValueError("a stored value cannot be decrypted with any configured key") from None


def hash_secret(secret: str) -> str:
    """API key secrets are random and long, so a fast keyed hash is adequate (no KDF needed)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def secrets_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a, b)

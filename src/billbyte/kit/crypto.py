"""Encryption of stored vendor credentials and hashing of API key secrets."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken


def _fernet(secret_key: str) -> Fernet:
    # Derive a Fernet key from the operator's secret so any string can be used.
    digest = hashlib.sha256(("billbyte-credentials:" + secret_key).encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def encrypt_json(secret_key: str, payload: dict[str, Any]) -> str:
    return _fernet(secret_key).encrypt(json.dumps(payload, sort_keys=True).encode()).decode()


def decrypt_json(secret_key: str, token: str) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(_fernet(secret_key).decrypt(token.encode()))
    except InvalidToken:
        raise ValueError("stored credentials cannot be decrypted with this secret key") from None
    return data


def hash_secret(secret: str) -> str:
    """API key secrets are random and long, so a fast keyed hash is adequate (no KDF needed)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def secrets_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a, b)

"""Passwords of people (console staff, portal users): argon2id, the OWASP-recommended KDF.

API key secrets are random and long and use a fast hash (``kit.crypto.hash_secret``);
people's passwords are not, so they get a memory-hard KDF with per-password salt.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from billbyte.kit.errors import InvalidInput

MIN_LENGTH = 12
MAX_LENGTH = 256  # argon2 takes any length; the bound keeps one sign-in from costing more
_hasher = PasswordHasher()  # argon2id with the library's current (RFC 9106 low-memory) profile
# Verified when the e-mail address is unknown, so that an unknown address costs as much
# time as a wrong password and the response time does not tell which addresses exist.
_DECOY = _hasher.hash("billbyte-decoy-password")


def check_policy(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise InvalidInput(
            f"A password needs at least {MIN_LENGTH} characters.",
            code="weak_password",
            field="password",
        )
    if len(password) > MAX_LENGTH:
        raise InvalidInput(
            f"A password has at most {MAX_LENGTH} characters.",
            code="weak_password",
            field="password",
        )


def hash_password(password: str) -> str:
    check_policy(password)
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    if len(password) > MAX_LENGTH:
        return False
    try:
        return _hasher.verify(password_hash or _DECOY, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)

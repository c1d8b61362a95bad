"""Who is calling: an API key resolved to its MSP and role."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from billbyte.auth.models import ApiKey
from billbyte.auth.roles import WRITE_ROLES, Role
from billbyte.kit.clock import utcnow
from billbyte.kit.crypto import hash_secret, secrets_equal
from billbyte.kit.errors import Forbidden, Unauthenticated

KEY_PREFIX = "bb_"
LAST_USED_GRANULARITY = timedelta(minutes=1)


@dataclass(frozen=True)
class AuthSubject:
    msp_id: str
    actor: str  # "key:<id>" or "user:<id>" or "cli"
    role: Role

    def require_write(self) -> None:
        if self.role not in WRITE_ROLES:
            raise Forbidden(f"The {self.role} role is read-only.", code="read_only_role")

    def require_admin(self) -> None:
        if self.role != Role.ADMIN:
            raise Forbidden("Only an admin may do this.", code="admin_required")


def split_key(token: str) -> tuple[str, str] | None:
    """Keys look like ``bb_<prefix>_<secret>``; the prefix is shown, the secret only once."""
    if not token.startswith(KEY_PREFIX):
        return None
    parts = token[len(KEY_PREFIX) :].split("_", 1)
    if len(parts) != 2 or not parts[0] or not parts[1]:
        return None
    return parts[0], parts[1]


def authenticate(session: Session, token: str | None) -> AuthSubject:
    if not token:
        raise Unauthenticated(
            "Missing API key: send 'Authorization: Bearer <api key>'.", code="missing_api_key"
        )
    parts = split_key(token)
    if parts is None:
        raise Unauthenticated("Malformed API key.", code="invalid_api_key")
    prefix, secret = parts
    key = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    if key is None or not secrets_equal(key.secret_hash, hash_secret(secret)):
        raise Unauthenticated("Invalid API key.", code="invalid_api_key")
    if key.revoked_at is not None:
        raise Unauthenticated("This API key has been revoked.", code="revoked_api_key")
    now = utcnow()
    # Throttled so that a busy integration does not write on every request.
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_GRANULARITY:
        key.last_used_at = now
    return AuthSubject(msp_id=key.msp_id, actor=f"key:{key.id}", role=Role(key.role))

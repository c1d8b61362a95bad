"""MSPs, users and API keys: operator operations (CLI) and the MSP's own key management."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from billbyte.audit.service import record
from billbyte.auth import web_sessions
from billbyte.auth.models import ApiKey, MspUser
from billbyte.auth.roles import Role
from billbyte.auth.subject import KEY_PREFIX, AuthSubject
from billbyte.kit.clock import utcnow
from billbyte.kit.crypto import hash_secret
from billbyte.kit.errors import Conflict, InvalidInput, NotFound
from billbyte.kit.repository import get_owned
from billbyte.tenancy.models import Msp


@dataclass(frozen=True)
class IssuedKey:
    key: ApiKey
    secret: str  # the full token, shown once

    @property
    def token(self) -> str:
        return self.secret


def _role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        allowed = ", ".join(r.value for r in Role)
        raise InvalidInput(
            f"Unknown role {value!r}; expected one of {allowed}.", code="unknown_role"
        ) from None


def create_msp(session: Session, name: str) -> tuple[Msp, IssuedKey]:
    name = name.strip()
    if not name:
        raise InvalidInput("An MSP needs a name.")
    msp = Msp(name=name)
    session.add(msp)
    session.flush()
    subject = AuthSubject(msp_id=msp.id, actor="cli", role=Role.ADMIN)
    record(session, subject, "msp.created", "msp", msp.id, before=None, after={"name": name})
    issued = issue_api_key(session, subject, name="admin", role=Role.ADMIN.value)
    return msp, issued


def get_msp(session: Session, msp_id: str) -> Msp:
    msp = session.get(Msp, msp_id)
    if msp is None:
        raise NotFound(f"No MSP {msp_id!r}.")
    return msp


def list_msps(session: Session) -> list[Msp]:
    return list(session.scalars(select(Msp).order_by(Msp.id)))


def add_user(session: Session, subject: AuthSubject, email: str, role: str) -> MspUser:
    address = email.strip().lower()
    local, _, domain = address.partition("@")
    if not local or "." not in domain or " " in address:
        raise InvalidInput(f"{email!r} is not an e-mail address.", field="email")
    taken = session.scalar(
        select(MspUser.id).where(MspUser.msp_id == subject.msp_id, MspUser.email == address)
    )
    if taken:
        raise Conflict(f"{address} is already a user of this MSP.", code="user_exists")
    user = MspUser(msp_id=subject.msp_id, email=address, role=_role(role).value)
    session.add(user)
    session.flush()
    record(
        session,
        subject,
        "user.created",
        "user",
        user.id,
        before=None,
        after={"email": user.email, "role": user.role},
    )
    return user


def list_users(session: Session, msp_id: str) -> list[MspUser]:
    return list(
        session.scalars(select(MspUser).where(MspUser.msp_id == msp_id).order_by(MspUser.id))
    )


def issue_api_key(session: Session, subject: AuthSubject, *, name: str, role: str) -> IssuedKey:
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32).replace("_", "x").replace("-", "y")
    key = ApiKey(
        msp_id=subject.msp_id,
        name=name,
        role=_role(role).value,
        prefix=prefix,
        secret_hash=hash_secret(secret),
    )
    session.add(key)
    session.flush()
    record(
        session,
        subject,
        "api_key.created",
        "api_key",
        key.id,
        before=None,
        after={"name": name, "role": key.role, "prefix": prefix},
    )
    return IssuedKey(key=key, secret=f"{KEY_PREFIX}{prefix}_{secret}")


def list_api_keys(session: Session, msp_id: str) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).where(ApiKey.msp_id == msp_id).order_by(ApiKey.id)))


def revoke_api_key(session: Session, subject: AuthSubject, key_id: str) -> ApiKey:
    key = get_owned(session, ApiKey, subject.msp_id, key_id, what="API key")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        record(
            session,
            subject,
            "api_key.revoked",
            "api_key",
            key.id,
            before={"revoked": False},
            after={"revoked": True},
        )
    return key


def get_user(session: Session, msp_id: str, user_id: str) -> MspUser:
    return get_owned(session, MspUser, msp_id, user_id, what="user")


def sign_in_link(session: Session, subject: AuthSubject, user_id: str, public_url: str) -> str:
    """A one-time link where a staff member sets their console password (an invitation for
    a new user, a reset for one who forgot it or is locked out). Shown once; only the
    newest link works."""
    user = get_user(session, subject.msp_id, user_id)
    token = web_sessions.issue_reset(session, web_sessions.CONSOLE, user, subject.actor)
    record(session, subject, "user.sign_in_link_issued", "user", user.id, before=None, after=None)
    return f"{public_url}/console/reset/{token}"

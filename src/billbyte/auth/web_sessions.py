"""People signing in to the console (MSP staff) and the portal (customers' users).

Server-side sessions: the browser holds a random token in an HttpOnly cookie, the database its
SHA-256 (``WebSession``), so a stolen database does not sign anyone in and revoking rows signs
a person out everywhere. Each session has its own CSRF token, which every form posts back.

Lockout: ``MAX_FAILED_SIGN_INS`` wrong passwords in a row lock the account for
``LOCKOUT``; while locked even the right password is refused, and a password reset by an MSP
admin unlocks it. Every refusal reads the same ("wrong e-mail address or password"), except
the lockout itself, which a person needs to know about.

Functions here take a ``Session`` and never commit: a refused sign-in's counter must be
committed by the caller too (``SignInResult`` is returned, not raised, for that reason).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from billbyte.auth.models import MspUser, PasswordReset, PortalUser, WebSession
from billbyte.auth.passwords import hash_password, needs_rehash, verify_password
from billbyte.auth.roles import Role
from billbyte.auth.subject import AuthSubject
from billbyte.kit.clock import utcnow
from billbyte.kit.crypto import hash_secret, secrets_equal

Audience = Literal["portal", "console"]
PORTAL: Audience = "portal"
CONSOLE: Audience = "console"

MAX_FAILED_SIGN_INS = 5
LOCKOUT = timedelta(minutes=15)
SESSION_LIFETIME = timedelta(hours=12)
RESET_LIFETIME = timedelta(days=3)

User = MspUser | PortalUser
REFUSED = "Wrong e-mail address or password."
LOCKED = (
    "Too many failed sign-ins: this account is locked for {minutes} minutes. "
    "Your administrator can reset your password to unlock it now."
)


@dataclass(frozen=True)
class WebSubject:
    """A signed-in person, as every page sees them."""

    audience: Audience
    session_id: str
    user_id: str
    msp_id: str
    customer_id: str | None  # set for a portal user: the one customer they may see
    role: str  # a staff Role, or "customer" for a portal user
    email: str
    name: str
    locale: str | None
    csrf_token: str

    def as_auth_subject(self) -> AuthSubject:
        """The subject the features' services take. A portal user only ever reads, so it
        acts with the read-only help-desk role, and its pages always pass its customer."""
        role = Role(self.role) if self.audience == CONSOLE else Role.HELPDESK
        return AuthSubject(msp_id=self.msp_id, actor=f"{self.audience}:{self.user_id}", role=role)


@dataclass(frozen=True)
class SignInResult:
    token: str | None = None
    subject: WebSubject | None = None
    refusal: str | None = None
    locked: bool = False


def _model(audience: Audience) -> type[MspUser] | type[PortalUser]:
    return PortalUser if audience == PORTAL else MspUser


def _user(session: Session, audience: Audience, user_id: str) -> User | None:
    if audience == PORTAL:
        return session.get(PortalUser, user_id)
    return session.get(MspUser, user_id)


def normalise_email(email: str) -> str:
    return email.strip().lower()


def _aware(moment: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; they are UTC by convention (kit.clock.iso).
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=utcnow().tzinfo)
    return moment


def _subject(audience: Audience, row: WebSession, user: User) -> WebSubject:
    return WebSubject(
        audience=audience,
        session_id=row.id,
        user_id=user.id,
        msp_id=user.msp_id,
        customer_id=user.customer_id if isinstance(user, PortalUser) else None,
        role=user.role if isinstance(user, MspUser) else "customer",
        email=user.email,
        name=user.name,
        locale=user.locale if isinstance(user, PortalUser) else None,
        csrf_token=row.csrf_token,
    )


def sign_in(
    session: Session, audience: Audience, email: str, password: str, *, now: datetime | None = None
) -> SignInResult:
    now = now or utcnow()
    address = normalise_email(email)
    model = _model(audience)
    candidates: list[User] = list(session.scalars(select(model).where(model.email == address)))
    usable = [user for user in candidates if user.disabled_at is None]
    if not usable:
        verify_password(None, password)  # the same work as a wrong password
        return SignInResult(refusal=REFUSED)
    for user in usable:
        locked_until = _aware(user.locked_until)
        if locked_until is not None and locked_until > now:
            minutes = max(1, int((locked_until - now).total_seconds() // 60) + 1)
            return SignInResult(refusal=LOCKED.format(minutes=minutes), locked=True)
        if user.password_hash and verify_password(user.password_hash, password):
            user.failed_sign_ins = 0
            user.locked_until = None
            user.last_sign_in_at = now
            if needs_rehash(user.password_hash):
                user.password_hash = hash_password(password)
            token, row = _open_session(session, audience, user, now)
            return SignInResult(token=token, subject=_subject(audience, row, user))
    for user in usable:
        user.failed_sign_ins += 1
        if user.failed_sign_ins >= MAX_FAILED_SIGN_INS:
            user.failed_sign_ins = 0
            user.locked_until = now + LOCKOUT
            minutes = int(LOCKOUT.total_seconds() // 60)
            return SignInResult(refusal=LOCKED.format(minutes=minutes), locked=True)
    return SignInResult(refusal=REFUSED)


def _open_session(
    session: Session, audience: Audience, user: User, now: datetime
) -> tuple[str, WebSession]:
    token = secrets.token_urlsafe(32)
    row = WebSession(
        token_hash=hash_secret(token),
        audience=audience,
        msp_id=user.msp_id,
        user_id=user.id,
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        expires_at=now + SESSION_LIFETIME,
    )
    session.add(row)
    session.flush()
    return token, row


def resolve(
    session: Session, audience: Audience, token: str | None, *, now: datetime | None = None
) -> WebSubject | None:
    """The person a session cookie signs in, or None (unknown, expired, revoked, another
    audience's session, a disabled user)."""
    if not token or len(token) > 128:
        return None
    now = now or utcnow()
    row = session.scalar(select(WebSession).where(WebSession.token_hash == hash_secret(token)))
    if row is None or row.audience != audience or row.revoked_at is not None:
        return None
    expires_at = _aware(row.expires_at)
    if expires_at is None or expires_at <= now:
        return None
    user = _user(session, audience, row.user_id)
    if user is None or user.disabled_at is not None or user.msp_id != row.msp_id:
        return None
    return _subject(audience, row, user)


def csrf_matches(subject: WebSubject, presented: str | None) -> bool:
    return bool(presented) and secrets_equal(subject.csrf_token, presented or "")


def sign_out(session: Session, subject: WebSubject, *, now: datetime | None = None) -> None:
    row = session.get(WebSession, subject.session_id)
    if row is not None and row.revoked_at is None:
        row.revoked_at = now or utcnow()


def sign_out_everywhere(
    session: Session, audience: Audience, user_id: str, *, now: datetime | None = None
) -> int:
    """Revoke every open session of one person; the number revoked."""
    result = session.execute(
        update(WebSession)
        .where(
            WebSession.audience == audience,
            WebSession.user_id == user_id,
            WebSession.revoked_at.is_(None),
        )
        .values(revoked_at=now or utcnow())
    )
    return int(getattr(result, "rowcount", 0) or 0)


def issue_reset(
    session: Session,
    audience: Audience,
    user: User,
    created_by: str,
    *,
    now: datetime | None = None,
) -> str:
    """A one-time password-reset token for ``user`` (also how a new user is invited). Older
    unused tokens of the same user stop working: only the newest link is valid."""
    now = now or utcnow()
    session.execute(
        update(PasswordReset)
        .where(
            PasswordReset.audience == audience,
            PasswordReset.user_id == user.id,
            PasswordReset.used_at.is_(None),
        )
        .values(used_at=now)
    )
    token = secrets.token_urlsafe(32)
    session.add(
        PasswordReset(
            token_hash=hash_secret(token),
            audience=audience,
            msp_id=user.msp_id,
            user_id=user.id,
            created_by=created_by,
            created_at=now,
            expires_at=now + RESET_LIFETIME,
        )
    )
    session.flush()
    return token


def _open_reset(
    session: Session, audience: Audience, token: str, now: datetime
) -> tuple[PasswordReset, User] | None:
    if not token or len(token) > 128:
        return None
    row = session.scalar(
        select(PasswordReset).where(PasswordReset.token_hash == hash_secret(token))
    )
    if row is None or row.audience != audience or row.used_at is not None:
        return None
    expires_at = _aware(row.expires_at)
    if expires_at is None or expires_at <= now:
        return None
    user = _user(session, audience, row.user_id)
    if user is None or user.disabled_at is not None:
        return None
    return row, user


def reset_holder(
    session: Session, audience: Audience, token: str, *, now: datetime | None = None
) -> User | None:
    """Whose password a reset link would set, if the link is still valid."""
    opened = _open_reset(session, audience, token, now or utcnow())
    return opened[1] if opened else None


def complete_reset(
    session: Session, audience: Audience, token: str, password: str, *, now: datetime | None = None
) -> User | None:
    """Set a new password from a reset link: unlocks the account and signs every browser
    out. None if the link is not (or no longer) valid. Raises InvalidInput for a weak
    password, leaving the link usable."""
    now = now or utcnow()
    opened = _open_reset(session, audience, token, now)
    if opened is None:
        return None
    row, user = opened
    user.password_hash = hash_password(password)
    user.failed_sign_ins = 0
    user.locked_until = None
    row.used_at = now
    sign_out_everywhere(session, audience, user.id, now=now)
    return user

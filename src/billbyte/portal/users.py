"""Portal users: an MSP invites its customers' people to the portal, resets their passwords
(a one-time link the MSP hands over) and can disable them or sign them out everywhere."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from billbyte.audit.service import record
from billbyte.auth import web_sessions
from billbyte.auth.models import PortalUser
from billbyte.auth.subject import AuthSubject
from billbyte.customers import repository as customers
from billbyte.kit.clock import utcnow
from billbyte.kit.errors import Conflict, InvalidInput
from billbyte.kit.repository import get_owned


@dataclass(frozen=True)
class Invitation:
    user: PortalUser
    link: str  # the one-time link where the user sets a password; shown once


def _address(email: str) -> str:
    address = web_sessions.normalise_email(email)
    local, _, domain = address.partition("@")
    if not local or "." not in domain or " " in address or len(address) > 320:
        raise InvalidInput(f"{email!r} is not an e-mail address.", field="email")
    return address


def _link(session: Session, subject: AuthSubject, user: PortalUser, public_url: str) -> str:
    token = web_sessions.issue_reset(session, web_sessions.PORTAL, user, subject.actor)
    return f"{public_url}/portal/reset/{token}"


def invite(
    session: Session,
    subject: AuthSubject,
    customer_id: str,
    *,
    email: str,
    name: str,
    locale: str | None,
    public_url: str,
) -> Invitation:
    subject.require_write()
    customer = customers.get_customer(session, subject.msp_id, customer_id)
    address = _address(email)
    if session.scalar(select(PortalUser.id).where(PortalUser.email == address)):
        raise Conflict(f"{address} already has a portal account.", code="portal_user_exists")
    user = PortalUser(
        msp_id=subject.msp_id,
        customer_id=customer.id,
        email=address,
        name=name.strip(),
        locale=locale,
    )
    session.add(user)
    session.flush()
    record(
        session,
        subject,
        "portal_user.invited",
        "portal_user",
        user.id,
        before=None,
        after={"email": address, "customer_id": customer.id},
    )
    return Invitation(user=user, link=_link(session, subject, user, public_url))


def list_for_customer(session: Session, msp_id: str, customer_id: str) -> list[PortalUser]:
    customer = customers.get_customer(session, msp_id, customer_id)
    return list(
        session.scalars(
            select(PortalUser)
            .where(PortalUser.msp_id == msp_id, PortalUser.customer_id == customer.id)
            .order_by(PortalUser.email)
        )
    )


def get(session: Session, msp_id: str, user_id: str) -> PortalUser:
    return get_owned(session, PortalUser, msp_id, user_id, what="portal user")


def reset_link(session: Session, subject: AuthSubject, user_id: str, public_url: str) -> str:
    """A new one-time link to set a password: unlocks a locked account; earlier links stop
    working; the user's sessions end when the new password is set."""
    subject.require_write()
    user = get(session, subject.msp_id, user_id)
    link = _link(session, subject, user, public_url)
    record(
        session,
        subject,
        "portal_user.reset_issued",
        "portal_user",
        user.id,
        before=None,
        after=None,
    )
    return link


def set_disabled(
    session: Session, subject: AuthSubject, user_id: str, disabled: bool
) -> PortalUser:
    subject.require_write()
    user = get(session, subject.msp_id, user_id)
    before = {"disabled": user.disabled_at is not None}
    user.disabled_at = utcnow() if disabled else None
    if disabled:
        web_sessions.sign_out_everywhere(session, web_sessions.PORTAL, user.id)
    record(
        session,
        subject,
        "portal_user.disabled" if disabled else "portal_user.enabled",
        "portal_user",
        user.id,
        before=before,
        after={"disabled": disabled},
    )
    return user


def sign_out_everywhere(session: Session, subject: AuthSubject, user_id: str) -> int:
    subject.require_write()
    user = get(session, subject.msp_id, user_id)
    return web_sessions.sign_out_everywhere(session, web_sessions.PORTAL, user.id)

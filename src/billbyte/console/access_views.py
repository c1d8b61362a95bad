"""The access pages' data: staff users and API keys through tenancy's service, the
functions the API (``/v1/api-keys``) and the operator's CLI call. Managing either is an
admin's (as in the API); listing keys is an admin's too, as ``GET /v1/api-keys`` is."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from billbyte.auth.models import ApiKey, MspUser
from billbyte.auth.roles import Role
from billbyte.auth.subject import AuthSubject
from billbyte.console.admin_views import validated
from billbyte.console.common import text
from billbyte.kit.repository import get_owned
from billbyte.tenancy import service
from billbyte.tenancy.endpoints import ApiKeyCreate, ApiKeyOut

ROLES = [(r.value, r.value) for r in Role]


@dataclass(frozen=True)
class Access:
    users: list[MspUser]
    keys: list[ApiKeyOut] | None  # None: the reader may not list keys (not an admin)


def access(session: Session, subject: AuthSubject) -> Access:
    keys = None
    if subject.role == Role.ADMIN:
        keys = [ApiKeyOut.model_validate(k) for k in service.list_api_keys(session, subject.msp_id)]
    return Access(users=service.list_users(session, subject.msp_id), keys=keys)


@dataclass(frozen=True)
class Invitation:
    email: str
    link: str  # the one-time sign-in link, shown once


def add_user(session: Session, subject: AuthSubject, form: FormData, public_url: str) -> Invitation:
    subject.require_admin()
    user = service.add_user(session, subject, text(form, "email"), text(form, "role"))
    return Invitation(user.email, service.sign_in_link(session, subject, user.id, public_url))


def new_link(session: Session, subject: AuthSubject, user_id: str, public_url: str) -> Invitation:
    subject.require_admin()
    user = service.get_user(session, subject.msp_id, user_id)
    return Invitation(user.email, service.sign_in_link(session, subject, user.id, public_url))


def set_disabled(session: Session, subject: AuthSubject, user_id: str, disabled: bool) -> None:
    service.set_user_disabled(session, subject, user_id, disabled)


def set_role(session: Session, subject: AuthSubject, user_id: str, form: FormData) -> None:
    service.set_user_role(session, subject, user_id, text(form, "role"))


def issue_key(session: Session, subject: AuthSubject, form: FormData) -> service.IssuedKey:
    subject.require_admin()
    body = validated(ApiKeyCreate, {"name": text(form, "name"), "role": text(form, "role")})
    return service.issue_api_key(session, subject, name=body.name, role=body.role.value)


def key(session: Session, subject: AuthSubject, key_id: str) -> ApiKeyOut:
    subject.require_admin()
    return ApiKeyOut.model_validate(
        get_owned(session, ApiKey, subject.msp_id, key_id, what="API key")
    )


def revoke_key(session: Session, subject: AuthSubject, key_id: str) -> None:
    subject.require_admin()
    service.revoke_api_key(session, subject, key_id)

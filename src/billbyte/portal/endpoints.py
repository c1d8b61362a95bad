"""The API for portal users: invite (with a one-time link to hand over), list, new link,
disable, sign out everywhere."""

from __future__ import annotations

from fastapi import APIRouter, status

from billbyte.api.deps import RuntimeDep, Uow
from billbyte.api.responses import READ_ONE, WRITE
from billbyte.auth.deps import Subject
from billbyte.kit.pagination import ListResponse
from billbyte.portal import users
from billbyte.portal.schemas import PortalUserIn, PortalUserInvited, PortalUserOut, SignInLink

router = APIRouter(tags=["portal users"])


@router.post(
    "/v1/customers/{customer_id}/portal-users",
    summary="Invite a customer's user to the portal",
    status_code=status.HTTP_201_CREATED,
    response_model=PortalUserInvited,
    responses=WRITE,
)
def invite_portal_user(
    customer_id: str, body: PortalUserIn, subject: Subject, uow: Uow, runtime: RuntimeDep
) -> PortalUserInvited:
    invitation = users.invite(
        uow.session,
        subject,
        customer_id,
        email=body.email,
        name=body.name,
        locale=body.locale,
        public_url=runtime.settings.effective_public_url,
    )
    uow.commit()
    return PortalUserInvited(
        **PortalUserOut.model_validate(invitation.user).model_dump(),
        sign_in_link=invitation.link,
    )


@router.get(
    "/v1/customers/{customer_id}/portal-users",
    summary="List a customer's portal users",
    response_model=ListResponse[PortalUserOut],
    responses=READ_ONE,
)
def list_portal_users(customer_id: str, subject: Subject, uow: Uow) -> ListResponse[PortalUserOut]:
    rows = users.list_for_customer(uow.session, subject.msp_id, customer_id)
    return ListResponse(data=[PortalUserOut.model_validate(row) for row in rows])


@router.post(
    "/v1/portal-users/{user_id}/sign-in-link",
    summary="Issue a new one-time password link (unlocks the account)",
    response_model=SignInLink,
    responses=WRITE,
)
def portal_user_sign_in_link(
    user_id: str, subject: Subject, uow: Uow, runtime: RuntimeDep
) -> SignInLink:
    link = users.reset_link(uow.session, subject, user_id, runtime.settings.effective_public_url)
    uow.commit()
    return SignInLink(sign_in_link=link)


@router.post(
    "/v1/portal-users/{user_id}/disable",
    summary="Disable a portal user (signs them out everywhere)",
    response_model=PortalUserOut,
    responses=WRITE,
)
def disable_portal_user(user_id: str, subject: Subject, uow: Uow) -> PortalUserOut:
    user = users.set_disabled(uow.session, subject, user_id, True)
    uow.commit()
    return PortalUserOut.model_validate(user)


@router.post(
    "/v1/portal-users/{user_id}/enable",
    summary="Enable a disabled portal user",
    response_model=PortalUserOut,
    responses=WRITE,
)
def enable_portal_user(user_id: str, subject: Subject, uow: Uow) -> PortalUserOut:
    user = users.set_disabled(uow.session, subject, user_id, False)
    uow.commit()
    return PortalUserOut.model_validate(user)

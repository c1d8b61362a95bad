from __future__ import annotations

from fastapi import APIRouter, status

from billbyte.api.deps import DEFAULT_PAGE, Cursor, Limit, RuntimeDep, Uow
from billbyte.api.responses import READ, READ_ONE, WRITE
from billbyte.auth.deps import Subject
from billbyte.kit.outbound import OutboundPolicy
from billbyte.kit.pagination import ListResponse
from billbyte.kit.vendors import Vendor
from billbyte.partners import service
from billbyte.partners.schemas import (
    PartnerAccountCreate,
    PartnerAccountOut,
    PartnerAccountUpdate,
)

router = APIRouter(prefix="/v1/partner-accounts", tags=["partner accounts"])


@router.post(
    "",
    summary="Register a partner account",
    status_code=status.HTTP_201_CREATED,
    response_model=PartnerAccountOut,
    responses=WRITE,
)
def create_partner_account(
    body: PartnerAccountCreate, subject: Subject, uow: Uow, runtime: RuntimeDep
) -> PartnerAccountOut:
    account = service.create(
        uow.session,
        subject,
        body,
        runtime.secret_key,
        outbound=OutboundPolicy.from_settings(runtime.settings),
    )
    uow.commit()
    return PartnerAccountOut.model_validate(account)


@router.get(
    "",
    summary="List partner accounts",
    response_model=ListResponse[PartnerAccountOut],
    responses=READ,
)
def list_partner_accounts(
    subject: Subject,
    uow: Uow,
    vendor: Vendor | None = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_PAGE,
) -> ListResponse[PartnerAccountOut]:
    page = service.list_accounts(
        uow.session, subject, vendor=vendor.value if vendor else None, cursor=cursor, limit=limit
    )
    return ListResponse.of(page, PartnerAccountOut.model_validate)


@router.get(
    "/{partner_account_id}",
    summary="Get a partner account",
    response_model=PartnerAccountOut,
    responses=READ_ONE,
)
def get_partner_account(partner_account_id: str, subject: Subject, uow: Uow) -> PartnerAccountOut:
    return PartnerAccountOut.model_validate(service.get(uow.session, subject, partner_account_id))


@router.patch(
    "/{partner_account_id}",
    summary="Update a partner account",
    response_model=PartnerAccountOut,
    responses=WRITE,
)
def update_partner_account(
    partner_account_id: str,
    body: PartnerAccountUpdate,
    subject: Subject,
    uow: Uow,
    runtime: RuntimeDep,
) -> PartnerAccountOut:
    account = service.update(
        uow.session,
        subject,
        partner_account_id,
        body,
        runtime.secret_key,
        outbound=OutboundPolicy.from_settings(runtime.settings),
    )
    uow.commit()
    return PartnerAccountOut.model_validate(account)

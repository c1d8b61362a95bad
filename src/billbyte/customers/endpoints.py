from __future__ import annotations

from fastapi import APIRouter, Response, status

from billbyte.api.deps import DEFAULT_PAGE, Cursor, Limit, Uow
from billbyte.api.responses import CONFLICT, READ, READ_ONE, WRITE
from billbyte.auth.deps import Subject
from billbyte.customers import service
from billbyte.customers.schemas import (
    CustomerCreate,
    CustomerOut,
    CustomerStatus,
    CustomerUpdate,
    VendorAccountCreate,
    VendorAccountOut,
)
from billbyte.kit.pagination import ListResponse

router = APIRouter(prefix="/v1/customers", tags=["customers"])


@router.post(
    "",
    summary="Create a customer (idempotent on external_id)",
    status_code=status.HTTP_201_CREATED,
    response_model=CustomerOut,
    responses={
        200: {"model": CustomerOut, "description": "A customer with this external_id exists."},
        **WRITE,
    },
)
def create_customer(
    body: CustomerCreate, subject: Subject, uow: Uow, response: Response
) -> CustomerOut:
    customer, created = service.create(uow.session, subject, body)
    uow.commit()
    if not created:
        response.status_code = status.HTTP_200_OK
    return service.to_out(customer, uow.session)


@router.get("", summary="List customers", response_model=ListResponse[CustomerOut], responses=READ)
def list_customers(
    subject: Subject,
    uow: Uow,
    external_id: str | None = None,
    status: CustomerStatus | None = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_PAGE,
) -> ListResponse[CustomerOut]:
    page = service.list_customers(
        uow.session,
        subject,
        external_id=external_id,
        status=status.value if status else None,
        cursor=cursor,
        limit=limit,
    )
    return ListResponse.of(page, lambda c: service.to_out(c, uow.session))


@router.get(
    "/{customer_id}", summary="Get a customer", response_model=CustomerOut, responses=READ_ONE
)
def get_customer(customer_id: str, subject: Subject, uow: Uow) -> CustomerOut:
    return service.to_out(service.get(uow.session, subject, customer_id), uow.session)


@router.patch(
    "/{customer_id}", summary="Update a customer", response_model=CustomerOut, responses=WRITE
)
def update_customer(
    customer_id: str, body: CustomerUpdate, subject: Subject, uow: Uow
) -> CustomerOut:
    customer = service.update(uow.session, subject, customer_id, body)
    uow.commit()
    return service.to_out(customer, uow.session)


@router.post(
    "/{customer_id}/vendor-accounts",
    summary="Link a vendor account",
    status_code=status.HTTP_201_CREATED,
    response_model=VendorAccountOut,
    responses={**WRITE, **CONFLICT},
)
def link_vendor_account(
    customer_id: str, body: VendorAccountCreate, subject: Subject, uow: Uow
) -> VendorAccountOut:
    link = service.link_vendor_account(uow.session, subject, customer_id, body)
    uow.commit()
    return VendorAccountOut.model_validate(link)


@router.get(
    "/{customer_id}/vendor-accounts",
    summary="List a customer's vendor accounts",
    response_model=ListResponse[VendorAccountOut],
    responses=READ_ONE,
)
def list_vendor_accounts(
    customer_id: str, subject: Subject, uow: Uow
) -> ListResponse[VendorAccountOut]:
    links = service.list_vendor_accounts(uow.session, subject, customer_id)
    return ListResponse(data=[VendorAccountOut.model_validate(v) for v in links])


@router.get(
    "/{customer_id}/vendor-accounts/{vendor_account_id}",
    summary="Get a vendor account link",
    response_model=VendorAccountOut,
    responses=READ_ONE,
)
def get_vendor_account(
    customer_id: str, vendor_account_id: str, subject: Subject, uow: Uow
) -> VendorAccountOut:
    return VendorAccountOut.model_validate(
        service.get_vendor_account(uow.session, subject, customer_id, vendor_account_id)
    )


@router.delete(
    "/{customer_id}/vendor-accounts/{vendor_account_id}",
    summary="Unlink a vendor account",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=WRITE,
)
def unlink_vendor_account(
    customer_id: str, vendor_account_id: str, subject: Subject, uow: Uow
) -> Response:
    service.unlink_vendor_account(uow.session, subject, customer_id, vendor_account_id)
    uow.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)

from __future__ import annotations

from fastapi import APIRouter, Response, status

from billbyte.api.deps import DEFAULT_PAGE, Cursor, Limit, Uow
from billbyte.api.responses import CONFLICT, READ, READ_ONE, WRITE
from billbyte.auth.deps import Subject
from billbyte.customers import service
from billbyte.customers.schemas import (
    BillingDetailsIn,
    BillingDetailsOut,
    CustomerCreate,
    CustomerOut,
    CustomerStatus,
    CustomerUpdate,
    VendorAccountCreate,
    VendorAccountOut,
)
from billbyte.kit.pagination import ListResponse
from billbyte.pricing.schemas import PriceRuleIn, PriceRuleOut

# Customer-level price rules live under the customer (customers checks the customer, pricing
# stores the rule) but keep the "pricing" tag of the API document: two routers, one exported.
customers_router = APIRouter(prefix="/v1/customers", tags=["customers"])
price_rules_router = APIRouter(prefix="/v1/customers", tags=["pricing"])


@customers_router.post(
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


@customers_router.get(
    "", summary="List customers", response_model=ListResponse[CustomerOut], responses=READ
)
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


@customers_router.get(
    "/{customer_id}", summary="Get a customer", response_model=CustomerOut, responses=READ_ONE
)
def get_customer(customer_id: str, subject: Subject, uow: Uow) -> CustomerOut:
    return service.to_out(service.get(uow.session, subject, customer_id), uow.session)


@customers_router.patch(
    "/{customer_id}", summary="Update a customer", response_model=CustomerOut, responses=WRITE
)
def update_customer(
    customer_id: str, body: CustomerUpdate, subject: Subject, uow: Uow
) -> CustomerOut:
    customer = service.update(uow.session, subject, customer_id, body)
    uow.commit()
    return service.to_out(customer, uow.session)


@customers_router.get(
    "/{customer_id}/billing-details",
    summary="A customer's billing details (the buyer on its invoices)",
    response_model=BillingDetailsOut,
    responses=READ_ONE,
)
def get_billing_details(customer_id: str, subject: Subject, uow: Uow) -> BillingDetailsOut:
    return service.billing_details(uow.session, subject, customer_id)


@customers_router.put(
    "/{customer_id}/billing-details",
    summary="Set a customer's billing details and tax treatment (admin, billing)",
    response_model=BillingDetailsOut,
    responses=WRITE,
)
def put_billing_details(
    customer_id: str, body: BillingDetailsIn, subject: Subject, uow: Uow
) -> BillingDetailsOut:
    row = service.set_billing_details(
        uow.session, subject, customer_id, body.model_dump(mode="json")
    )
    uow.commit()
    return BillingDetailsOut.model_validate(row)


@customers_router.post(
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


@customers_router.get(
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


@customers_router.get(
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


@customers_router.delete(
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


@price_rules_router.post(
    "/{customer_id}/price-rules",
    summary="Add a customer-level override rule",
    status_code=status.HTTP_201_CREATED,
    response_model=PriceRuleOut,
    responses=WRITE,
)
def add_customer_price_rule(
    customer_id: str, body: PriceRuleIn, subject: Subject, uow: Uow
) -> PriceRuleOut:
    rule = service.add_price_rule(uow.session, subject, customer_id, body)
    uow.commit()
    return PriceRuleOut.model_validate(rule)


@price_rules_router.get(
    "/{customer_id}/price-rules",
    summary="List a customer's override rules",
    response_model=ListResponse[PriceRuleOut],
    responses=READ_ONE,
)
def list_customer_price_rules(
    customer_id: str, subject: Subject, uow: Uow
) -> ListResponse[PriceRuleOut]:
    rules = service.list_price_rules(uow.session, subject, customer_id)
    return ListResponse(data=[PriceRuleOut.model_validate(r) for r in rules])


router = APIRouter()
router.include_router(customers_router)
router.include_router(price_rules_router)

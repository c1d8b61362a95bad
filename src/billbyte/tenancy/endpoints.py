from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from billbyte.api.deps import Uow
from billbyte.api.responses import FORBIDDEN, READ, WRITE
from billbyte.auth.deps import Subject
from billbyte.auth.roles import Role
from billbyte.kit.pagination import ListResponse
from billbyte.tenancy import service

router = APIRouter(prefix="/v1/api-keys", tags=["api keys"])


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    role: Role


class ApiKeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    object: str = "api_key"
    name: str
    role: Role
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyIssued(ApiKeyOut):
    secret: str = Field(description="The full key. Shown once; store it now.")


@router.post(
    "",
    summary="Issue an API key (admin)",
    status_code=status.HTTP_201_CREATED,
    response_model=ApiKeyIssued,
    responses=WRITE,
)
def create_api_key(body: ApiKeyCreate, subject: Subject, uow: Uow) -> ApiKeyIssued:
    subject.require_admin()
    issued = service.issue_api_key(uow.session, subject, name=body.name, role=body.role.value)
    uow.commit()
    return ApiKeyIssued(**ApiKeyOut.model_validate(issued.key).model_dump(), secret=issued.secret)


@router.get(
    "",
    summary="List API keys (admin)",
    response_model=ListResponse[ApiKeyOut],
    responses={**READ, **FORBIDDEN},
)
def list_api_keys(subject: Subject, uow: Uow) -> ListResponse[ApiKeyOut]:
    subject.require_admin()
    return ListResponse(
        data=[
            ApiKeyOut.model_validate(k) for k in service.list_api_keys(uow.session, subject.msp_id)
        ]
    )


@router.post(
    "/{api_key_id}/revoke",
    summary="Revoke an API key (admin)",
    response_model=ApiKeyOut,
    responses=WRITE,
)
def revoke_api_key(api_key_id: str, subject: Subject, uow: Uow) -> ApiKeyOut:
    subject.require_admin()
    key = service.revoke_api_key(uow.session, subject, api_key_id)
    uow.commit()
    return ApiKeyOut.model_validate(key)


# --- the MSP's billing profile (the seller on its invoices) ---------------------------------

billing_profile_router = APIRouter(prefix="/v1/billing-profile", tags=["billing profile"])


class BillingProfileIn(BaseModel):
    """The seller on the MSP's invoices. PUT replaces the whole profile: a field left out
    is cleared. Empty text means "not set"."""

    model_config = ConfigDict(extra="forbid")

    legal_name: str | None = Field(default=None, max_length=200)
    address_line1: str | None = Field(default=None, max_length=200)
    address_line2: str | None = Field(default=None, max_length=200)
    postal_code: str | None = Field(default=None, max_length=20)
    city: str | None = Field(default=None, max_length=100)
    country: str | None = Field(default=None, description="ISO 3166-1 alpha-2, e.g. DE.")
    tax_id: str | None = Field(
        default=None,
        max_length=40,
        description="VAT id; for an EU country checked with python-stdnum; stored compact.",
    )
    registration: str | None = Field(
        default=None, max_length=200, description="Company registration, e.g. HRB 12345."
    )
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=50)
    bank_name: str | None = Field(default=None, max_length=200)
    iban: str | None = Field(
        default=None, max_length=50, description="Checked with schwifty; stored compact."
    )
    bic: str | None = Field(default=None, max_length=20, description="Checked with schwifty.")
    payment_terms_days: StrictInt = Field(
        default=30, ge=0, le=365, description="Days from the invoice date to the due date."
    )
    footer_text: str | None = Field(default=None, max_length=1000)


class BillingProfileOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    object: str = "billing_profile"
    legal_name: str | None
    address_line1: str | None
    address_line2: str | None
    postal_code: str | None
    city: str | None
    country: str | None
    tax_id: str | None
    registration: str | None
    email: str | None
    phone: str | None
    bank_name: str | None
    iban: str | None
    bic: str | None
    payment_terms_days: int
    footer_text: str | None


@billing_profile_router.get(
    "",
    summary="The MSP's billing profile (the seller on its invoices)",
    response_model=BillingProfileOut,
    responses=READ,
)
def get_billing_profile(subject: Subject, uow: Uow) -> BillingProfileOut:
    return BillingProfileOut.model_validate(service.billing_profile(uow.session, subject.msp_id))


@billing_profile_router.put(
    "",
    summary="Set the MSP's billing profile (admin, billing)",
    response_model=BillingProfileOut,
    responses=WRITE,
)
def put_billing_profile(body: BillingProfileIn, subject: Subject, uow: Uow) -> BillingProfileOut:
    row = service.set_billing_profile(uow.session, subject, body.model_dump())
    uow.commit()
    return BillingProfileOut.model_validate(row)

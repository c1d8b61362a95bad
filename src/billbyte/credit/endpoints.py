from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from billbyte.api.deps import Subject, Uow
from billbyte.api.responses import READ, READ_ONE, WRITE
from billbyte.credit import service
from billbyte.customers import service as customers
from billbyte.usage.service import validate_period

router = APIRouter(tags=["credit control"])


class CreditPolicyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    thresholds: list[Annotated[StrictInt, Field(gt=0, le=1000)]] = Field(min_length=1)
    action: Literal["notify", "suspend"] = "notify"
    suspend_at: StrictInt = Field(default=100, gt=0, le=1000)


class CreditPolicyOut(BaseModel):
    thresholds: list[int]
    action: str
    suspend_at: int


class CreditEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    period: str
    threshold: int
    spend: str
    limit: str
    currency: str
    action_taken: str
    occurred_at: datetime


class CreditStandingOut(BaseModel):
    customer_id: str
    period: str
    currency: str
    status: str
    spend: str
    base: str | None
    base_kind: str | None
    percent: str | None
    events: list[CreditEventOut]


@router.get(
    "/v1/credit-policy",
    summary="The MSP's credit-control defaults",
    response_model=CreditPolicyOut,
    responses=READ,
)
def get_credit_policy(subject: Subject, uow: Uow) -> CreditPolicyOut:
    policy = service.policy_for(uow.session, subject.msp_id)
    return CreditPolicyOut(
        thresholds=policy.thresholds, action=policy.action, suspend_at=policy.suspend_at
    )


@router.put(
    "/v1/credit-policy",
    summary="Set the MSP's credit-control defaults",
    response_model=CreditPolicyOut,
    responses=WRITE,
)
def put_credit_policy(body: CreditPolicyIn, subject: Subject, uow: Uow) -> CreditPolicyOut:
    policy = service.set_policy(uow.session, subject, body.thresholds, body.action, body.suspend_at)
    uow.commit()
    return CreditPolicyOut(
        thresholds=policy.thresholds, action=policy.action, suspend_at=policy.suspend_at
    )


@router.get(
    "/v1/customers/{customer_id}/credit",
    summary="Credit standing for a period",
    response_model=CreditStandingOut,
    responses=READ_ONE,
)
def customer_credit(
    customer_id: str,
    subject: Subject,
    uow: Uow,
    period: Annotated[str, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")],
) -> CreditStandingOut:
    validate_period(period)
    customer = customers.get(uow.session, subject, customer_id)
    state = service.standing(uow.session, customer, period)
    events = [e for e in service.events(uow.session, subject, customer.id) if e.period == period]
    return CreditStandingOut(
        customer_id=customer.id,
        period=period,
        currency=customer.currency,
        status=customer.status,
        spend=format(state.spend, "f"),
        base=None if state.base is None else format(state.base, "f"),
        base_kind=state.base_kind,
        percent=None if state.percent is None else format(state.percent, "f"),
        events=[
            CreditEventOut(
                id=e.id,
                period=e.period,
                threshold=e.threshold,
                spend=format(e.spend, "f"),
                limit=format(e.limit, "f"),
                currency=e.currency,
                action_taken=e.action_taken,
                occurred_at=e.occurred_at,
            )
            for e in events
        ],
    )

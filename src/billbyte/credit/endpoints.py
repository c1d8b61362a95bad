from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, field_validator

from billbyte.api.deps import PeriodQuery, Subject, Uow
from billbyte.api.responses import READ, READ_ONE, WRITE
from billbyte.credit import prepaid, service
from billbyte.credit.models import CreditPolicy
from billbyte.customers import repository as customers
from billbyte.kit.periods import validate_period

router = APIRouter(tags=["credit control"])


class CreditPolicyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    thresholds: list[Annotated[StrictInt, Field(gt=0, le=1000)]] = Field(min_length=1)
    action: Literal["notify", "suspend"] = "notify"
    suspend_at: StrictInt = Field(default=100, gt=0, le=1000)
    prepaid_overdraft: StrictBool = Field(
        default=False,
        description="Let charges draw prepaid balances below zero (else the rest is invoiced).",
    )


class CreditPolicyOut(BaseModel):
    thresholds: list[int]
    action: str
    suspend_at: int
    prepaid_overdraft: bool


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
    prepaid_remaining: str | None = Field(
        default=None, description="What is left of the prepaid balance now."
    )
    prepaid_drawn: str | None = Field(
        default=None, description="What this period's charges drew from the prepaid balance."
    )
    events: list[CreditEventOut]


class TopUpIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: Decimal = Field(
        gt=0, description="Positive, in the customer's currency, at most its minor unit."
    )
    reference: str = Field(
        min_length=1,
        max_length=200,
        description="Your payment reference: the same reference again returns the first top-up.",
    )
    note: str | None = Field(default=None, max_length=500)

    @field_validator("amount", mode="before")
    @classmethod
    def _no_float(cls, value: object) -> object:
        if isinstance(value, float):
            raise ValueError("amount must be a decimal string, not a JSON number")
        return value


class PrepaidMovementOut(BaseModel):
    id: str
    object: str = "prepaid_movement"
    customer_id: str
    kind: str = Field(description="top_up, adjustment or draw_down")
    stage: str | None = Field(description="draw_down only: open (at rating) or final (invoiced)")
    period: str | None
    amount: str
    currency: str
    balance_after: str
    reference: str | None
    note: str | None
    actor: str
    created_at: datetime


class PrepaidMovementsOut(BaseModel):
    object: str = "list"
    customer_id: str
    currency: str
    prepaid_balance: str | None
    data: list[PrepaidMovementOut]


@router.get(
    "/v1/credit-policy",
    summary="The MSP's credit-control defaults",
    response_model=CreditPolicyOut,
    responses=READ,
)
def get_credit_policy(subject: Subject, uow: Uow) -> CreditPolicyOut:
    return _policy_out(service.policy_for(uow.session, subject.msp_id))


def _policy_out(policy: CreditPolicy) -> CreditPolicyOut:
    return CreditPolicyOut(
        thresholds=policy.thresholds,
        action=policy.action,
        suspend_at=policy.suspend_at,
        prepaid_overdraft=bool(policy.prepaid_overdraft),
    )


@router.put(
    "/v1/credit-policy",
    summary="Set the MSP's credit-control defaults",
    response_model=CreditPolicyOut,
    responses=WRITE,
)
def put_credit_policy(body: CreditPolicyIn, subject: Subject, uow: Uow) -> CreditPolicyOut:
    policy = service.set_policy(
        uow.session,
        subject,
        body.thresholds,
        body.action,
        body.suspend_at,
        body.prepaid_overdraft,
    )
    uow.commit()
    return _policy_out(policy)


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
    period: PeriodQuery,
) -> CreditStandingOut:
    validate_period(period)
    customer = customers.get_customer(uow.session, subject.msp_id, customer_id)
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
        prepaid_remaining=_amount(state.prepaid_remaining),
        prepaid_drawn=_amount(state.prepaid_drawn),
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


def _amount(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


@router.post(
    "/v1/customers/{customer_id}/prepaid-top-ups",
    summary="Top up a customer's prepaid balance (idempotent on reference)",
    response_model=PrepaidMovementOut,
    status_code=201,
    responses={**WRITE, 200: {"description": "This reference was already topped up"}},
)
def create_top_up(
    customer_id: str, body: TopUpIn, subject: Subject, uow: Uow, response: Response
) -> PrepaidMovementOut:
    customer = customers.get_customer(uow.session, subject.msp_id, customer_id)
    movement, created = prepaid.top_up(
        uow.session, subject, customer, body.amount, body.reference, body.note
    )
    uow.commit()
    if not created:
        response.status_code = 200
    return PrepaidMovementOut(**prepaid.movement_out(movement))


@router.get(
    "/v1/customers/{customer_id}/prepaid-movements",
    summary="A customer's prepaid ledger: top-ups, adjustments, draw-downs",
    response_model=PrepaidMovementsOut,
    responses=READ_ONE,
)
def list_prepaid_movements(customer_id: str, subject: Subject, uow: Uow) -> PrepaidMovementsOut:
    customer = customers.get_customer(uow.session, subject.msp_id, customer_id)
    return PrepaidMovementsOut(
        customer_id=customer.id,
        currency=customer.currency,
        prepaid_balance=_amount(customer.prepaid_balance),
        data=[
            PrepaidMovementOut(**prepaid.movement_out(m))
            for m in prepaid.movements(uow.session, customer.id)
        ],
    )

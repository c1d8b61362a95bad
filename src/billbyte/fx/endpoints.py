from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BeforeValidator

from billbyte.api.deps import DEFAULT_PAGE, Cursor, Limit, Uow
from billbyte.api.responses import READ, WRITE
from billbyte.auth.deps import Subject
from billbyte.fx import conversion, policy, rates
from billbyte.fx.schemas import (
    ConversionOut,
    FxPolicyIn,
    FxPolicyOut,
    FxRateOut,
    FxRatesPut,
    FxRatesPutOut,
    IsoDate,
    parse_plain_decimal,
)
from billbyte.kit.clock import utcnow
from billbyte.kit.pagination import ListResponse

router = APIRouter(prefix="/v1", tags=["fx"])

CurrencyParam = Annotated[str, Query(min_length=1, max_length=3, description="ISO 4217 code.")]
Amount = Annotated[
    Decimal,
    BeforeValidator(lambda value: parse_plain_decimal(value, "amount")),
    Query(
        description="A plain decimal string (no exponent), at most 18 decimal places.",
        examples=["1250.75"],
    ),
]


@router.put(
    "/fx-rates",
    summary="Store exchange rates (upsert by base, quote and date)",
    response_model=FxRatesPutOut,
    responses=WRITE,
)
def put_fx_rates(body: FxRatesPut, subject: Subject, uow: Uow) -> FxRatesPutOut:
    summary = rates.put_rates(uow.session, subject, body)
    uow.commit()
    return FxRatesPutOut(
        received=summary.received,
        inserted=summary.inserted,
        updated=summary.updated,
        unchanged=summary.unchanged,
    )


@router.get(
    "/fx-rates",
    summary="List stored exchange rates",
    response_model=ListResponse[FxRateOut],
    responses=READ,
)
def list_fx_rates(
    subject: Subject,
    uow: Uow,
    base: CurrencyParam | None = None,
    quote: CurrencyParam | None = None,
    start: Annotated[
        IsoDate | None, Query(alias="from", description="First rate date (inclusive).")
    ] = None,
    end: Annotated[
        IsoDate | None, Query(alias="to", description="Last rate date (inclusive).")
    ] = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_PAGE,
) -> ListResponse[FxRateOut]:
    page = rates.list_rates(
        uow.session,
        subject,
        base=base,
        quote=quote,
        start=start,
        end=end,
        cursor=cursor,
        limit=limit,
    )
    return ListResponse.of(page, FxRateOut.model_validate)


@router.get(
    "/fx-rates/convert",
    summary="Convert an amount as BillByte would on a given day",
    response_model=ConversionOut,
    responses=READ,
)
def convert_amount(
    subject: Subject,
    uow: Uow,
    amount: Amount,
    source: Annotated[str, Query(alias="from", min_length=1, max_length=3)],
    target: Annotated[str, Query(alias="to", min_length=1, max_length=3)],
    day: Annotated[
        IsoDate | None,
        Query(alias="date", description="The charge day; default today (UTC)."),
    ] = None,
) -> ConversionOut:
    result = conversion.convert(
        uow.session, subject.msp_id, amount, source, target, day or utcnow().date()
    )
    return ConversionOut(
        from_currency=result.path[0],
        to_currency=result.path[-1],
        amount=result.amount,
        converted=result.converted,
        rate=result.rate,
        rate_date=result.rate_date,
        path=list(result.path),
    )


@router.get(
    "/fx-policy",
    summary="Get the MSP's FX policy",
    response_model=FxPolicyOut,
    responses=READ,
)
def get_fx_policy(subject: Subject, uow: Uow) -> FxPolicyOut:
    return FxPolicyOut.build(policy.get_policy(uow.session, subject))


@router.put(
    "/fx-policy",
    summary="Replace the MSP's FX policy",
    response_model=FxPolicyOut,
    responses=WRITE,
)
def put_fx_policy(body: FxPolicyIn, subject: Subject, uow: Uow) -> FxPolicyOut:
    updated = policy.set_policy(uow.session, subject, body)
    uow.commit()
    return FxPolicyOut.build(updated)

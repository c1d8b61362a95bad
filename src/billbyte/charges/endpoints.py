from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from billbyte.api.deps import DEFAULT_PAGE, Limit, PeriodQuery, Uow
from billbyte.api.responses import READ, READ_ONE
from billbyte.auth.deps import Subject
from billbyte.charges import service
from billbyte.charges.schemas import ChangeFeedOut, ChargesOut, MarginReportOut

router = APIRouter(tags=["charges"])


@router.get(
    "/v1/customers/{customer_id}/charges",
    summary="Open charges of the customer's current invoice",
    response_model=ChargesOut,
    responses=READ_ONE,
)
def customer_charges(
    customer_id: str, subject: Subject, uow: Uow, period: PeriodQuery
) -> ChargesOut:
    return service.customer_charges(uow.session, subject, customer_id, period)


@router.get(
    "/v1/charges/changes",
    summary="Change feed of open charge lines (resumable)",
    response_model=ChangeFeedOut,
    responses=READ,
)
def charge_changes(
    subject: Subject,
    uow: Uow,
    after: Annotated[
        str | None, Query(description="Cursor of the last change you processed.")
    ] = None,
    limit: Limit = DEFAULT_PAGE,
) -> ChangeFeedOut:
    return service.changes(uow.session, subject, after, limit)


@router.get(
    "/v1/reports/margin",
    summary="Margin per customer, vendor or service",
    response_model=MarginReportOut,
    responses=READ,
)
def margin_report(
    subject: Subject,
    uow: Uow,
    period: PeriodQuery,
    group_by: Literal["customer", "vendor", "service"] = "customer",
) -> MarginReportOut:
    return service.margin_report(uow.session, subject, period, group_by)

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from billbyte.api.conditional import NOT_MODIFIED, IfNoneMatch, json_with_etag
from billbyte.api.deps import DEFAULT_PAGE, Limit, PeriodQuery, Uow
from billbyte.api.responses import READ, READ_ONE
from billbyte.auth.deps import Subject
from billbyte.charges import service
from billbyte.charges.schemas import ChangeFeedOut, ChargesOut, MarginReportOut

router = APIRouter(tags=["charges"])


@router.get(
    "/v1/customers/{customer_id}/charges",
    summary="Open charges of the customer's current invoice",
    description="Answers with an `ETag`; send it back in `If-None-Match` to get `304` (no "
    "body) while the charges are unchanged.",
    response_model=ChargesOut,
    responses={**NOT_MODIFIED, **READ_ONE},
)
def customer_charges(
    customer_id: str,
    subject: Subject,
    uow: Uow,
    period: PeriodQuery,
    if_none_match: IfNoneMatch = None,
) -> Response:
    state = service.charges_state(uow.session, subject, customer_id, period)
    return json_with_etag(
        lambda: service.charges_body(uow.session, state),
        service.charges_etag(state),
        if_none_match,
    )


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

"""Exports of a customer's billed lines."""

from __future__ import annotations

from fastapi import APIRouter, Response

from billbyte.api.deps import PeriodQuery, RuntimeDep, Uow
from billbyte.api.responses import READ_ONE
from billbyte.auth.deps import Subject
from billbyte.exports import service

router = APIRouter(tags=["exports"])


@router.get(
    "/v1/customers/{customer_id}/focus",
    summary="The customer's billed lines as FOCUS 1.2 CSV, at the customer's prices",
    response_class=Response,
    responses={
        200: {
            "description": "FOCUS 1.2 CSV (one header row); BilledCost adds up to the "
            "customer's charges total for the period.",
            "content": {"text/csv": {"schema": {"type": "string"}}},
        },
        **READ_ONE,
    },
)
def customer_focus(
    customer_id: str, period: PeriodQuery, subject: Subject, uow: Uow, runtime: RuntimeDep
) -> Response:
    text = service.customer_focus(runtime, uow.session, subject, customer_id, period)
    return Response(
        content=text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="focus-{customer_id}-{period}.csv"'},
    )

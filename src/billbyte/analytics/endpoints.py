from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from billbyte.analytics import service
from billbyte.api.deps import PeriodQuery, RuntimeDep, Uow
from billbyte.api.responses import READ_ONE
from billbyte.auth.deps import Subject

router = APIRouter(tags=["help desk"])


@router.get(
    "/v1/customers/{customer_id}/analytics",
    summary="Spend by vendor/service/day, top resources, forecast, anomalies, events",
    responses=READ_ONE,
)
def customer_analytics(
    customer_id: str,
    subject: Subject,
    uow: Uow,
    runtime: RuntimeDep,
    period: PeriodQuery,
) -> dict[str, Any]:
    return service.analytics(runtime, uow.session, subject, customer_id, period)

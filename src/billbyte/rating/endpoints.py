"""The plan preview: rating's one route.

It sits under ``/v1/price-plans`` with the pricing tag because that is where an MSP looks for it,
but it runs rating's pricing (``rating.compute``), and pricing must not import rating.
"""

from __future__ import annotations

from fastapi import APIRouter

from billbyte.api.deps import PeriodQuery, RuntimeDep, Uow
from billbyte.api.responses import READ_ONE
from billbyte.auth.deps import Subject
from billbyte.rating import preview

router = APIRouter(tags=["pricing"])


@router.get(
    "/v1/price-plans/{plan_id}/preview",
    summary="Preview a plan's effect on a past period (nothing is saved)",
    responses=READ_ONE,
)
def preview_price_plan(
    plan_id: str,
    subject: Subject,
    uow: Uow,
    runtime: RuntimeDep,
    period: PeriodQuery,
    customer_id: str | None = None,
) -> dict[str, object]:
    return preview.preview(runtime, uow.session, subject, plan_id, period, customer_id)

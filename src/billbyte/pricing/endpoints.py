from __future__ import annotations

from fastapi import APIRouter, Response, status

from billbyte.api.deps import DEFAULT_PAGE, Cursor, Limit, PeriodQuery, RuntimeDep, Subject, Uow
from billbyte.api.responses import READ, READ_ONE, WRITE
from billbyte.kit.pagination import ListResponse
from billbyte.pricing import service
from billbyte.pricing.schemas import (
    PricePlanIn,
    PricePlanOut,
    PricePlanUpdate,
    PriceRuleIn,
    PriceRuleOut,
)
from billbyte.rating import preview as rating_preview

router = APIRouter(tags=["pricing"])


@router.post(
    "/v1/price-plans",
    summary="Create a price plan (with rules)",
    status_code=status.HTTP_201_CREATED,
    response_model=PricePlanOut,
    responses=WRITE,
)
def create_price_plan(body: PricePlanIn, subject: Subject, uow: Uow) -> PricePlanOut:
    plan = service.create_plan(uow.session, subject, body)
    uow.commit()
    return service.plan_out(uow.session, plan)


@router.get(
    "/v1/price-plans",
    summary="List price plans",
    response_model=ListResponse[PricePlanOut],
    responses=READ,
)
def list_price_plans(
    subject: Subject, uow: Uow, cursor: Cursor = None, limit: Limit = DEFAULT_PAGE
) -> ListResponse[PricePlanOut]:
    page = service.list_plans(uow.session, subject, cursor=cursor, limit=limit)
    return ListResponse.of(page, lambda p: service.plan_out(uow.session, p))


@router.get(
    "/v1/price-plans/{plan_id}",
    summary="Get a price plan",
    response_model=PricePlanOut,
    responses=READ_ONE,
)
def get_price_plan(plan_id: str, subject: Subject, uow: Uow) -> PricePlanOut:
    return service.plan_out(uow.session, service.get_plan(uow.session, subject, plan_id))


@router.patch(
    "/v1/price-plans/{plan_id}",
    summary="Update a price plan",
    response_model=PricePlanOut,
    responses=WRITE,
)
def update_price_plan(
    plan_id: str, body: PricePlanUpdate, subject: Subject, uow: Uow
) -> PricePlanOut:
    plan = service.update_plan(uow.session, subject, plan_id, body)
    uow.commit()
    return service.plan_out(uow.session, plan)


@router.post(
    "/v1/price-plans/{plan_id}/rules",
    summary="Add a rule to a plan",
    status_code=status.HTTP_201_CREATED,
    response_model=PriceRuleOut,
    responses=WRITE,
)
def add_price_rule(plan_id: str, body: PriceRuleIn, subject: Subject, uow: Uow) -> PriceRuleOut:
    rule = service.add_rule(uow.session, subject, plan_id, body)
    uow.commit()
    return PriceRuleOut.model_validate(rule)


@router.put(
    "/v1/price-rules/{rule_id}",
    summary="Replace a rule",
    response_model=PriceRuleOut,
    responses=WRITE,
)
def replace_price_rule(rule_id: str, body: PriceRuleIn, subject: Subject, uow: Uow) -> PriceRuleOut:
    rule = service.replace_rule(uow.session, subject, rule_id, body)
    uow.commit()
    return PriceRuleOut.model_validate(rule)


@router.delete(
    "/v1/price-rules/{rule_id}",
    summary="Delete a rule",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=WRITE,
)
def delete_price_rule(rule_id: str, subject: Subject, uow: Uow) -> Response:
    service.delete_rule(uow.session, subject, rule_id)
    uow.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


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
    return rating_preview.preview(runtime, uow.session, subject, plan_id, period, customer_id)

"""The budgets API: an MSP (or its BSS) manages its customers' budgets and reads their alerts."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from billbyte.api.deps import OptionalPeriodQuery, Uow
from billbyte.api.responses import CONFLICT, READ_ONE, WRITE
from billbyte.auth.deps import Subject
from billbyte.budgets import service
from billbyte.budgets.schemas import (
    BudgetAlertListOut,
    BudgetCreate,
    BudgetListOut,
    BudgetOut,
    BudgetUpdate,
)

router = APIRouter(tags=["budgets"])


@router.post(
    "/v1/customers/{customer_id}/budgets",
    summary="Create a monthly budget with alert thresholds",
    response_model=BudgetOut,
    status_code=status.HTTP_201_CREATED,
    responses={**WRITE, **CONFLICT},
)
def create_budget(customer_id: str, body: BudgetCreate, subject: Subject, uow: Uow) -> BudgetOut:
    fields = service.BudgetFields(
        amount=body.amount,
        thresholds=list(body.thresholds),
        name=body.name,
        vendor=None if body.vendor is None else body.vendor.value,
    )
    budget = service.create(uow.session, subject, customer_id, fields)
    uow.commit()
    return service.budget_out(budget)


@router.get(
    "/v1/customers/{customer_id}/budgets",
    summary="A customer's budgets",
    response_model=BudgetListOut,
    responses=READ_ONE,
)
def list_budgets(customer_id: str, subject: Subject, uow: Uow) -> BudgetListOut:
    budgets = service.list_budgets(uow.session, subject, customer_id)
    return BudgetListOut(customer_id=customer_id, data=[service.budget_out(b) for b in budgets])


@router.patch(
    "/v1/budgets/{budget_id}",
    summary="Change a budget (only the fields sent)",
    response_model=BudgetOut,
    responses=WRITE,
)
def update_budget(budget_id: str, body: BudgetUpdate, subject: Subject, uow: Uow) -> BudgetOut:
    changes = body.model_dump(include=body.model_fields_set)
    if "vendor" in changes and changes["vendor"] is not None:
        changes["vendor"] = body.vendor.value if body.vendor else None
    budget = service.update(uow.session, subject, budget_id, changes)
    uow.commit()
    return service.budget_out(budget)


@router.delete(
    "/v1/budgets/{budget_id}",
    summary="Delete a budget and its alerts",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=WRITE,
)
def delete_budget(budget_id: str, subject: Subject, uow: Uow) -> Response:
    service.delete(uow.session, subject, budget_id)
    uow.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/v1/customers/{customer_id}/budget-alerts",
    summary="The budget thresholds a customer's spend reached (once per period each)",
    response_model=BudgetAlertListOut,
    responses=READ_ONE,
)
def list_budget_alerts(
    customer_id: str, subject: Subject, uow: Uow, period: OptionalPeriodQuery = None
) -> BudgetAlertListOut:
    found = service.alerts(uow.session, subject, customer_id, period)
    return BudgetAlertListOut(customer_id=customer_id, data=[service.alert_out(a) for a in found])

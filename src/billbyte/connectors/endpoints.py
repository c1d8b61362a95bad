from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field

from billbyte.api.deps import RuntimeDep, Uow
from billbyte.api.responses import CONFLICT, READ_ONE, WRITE
from billbyte.auth.deps import Subject
from billbyte.connectors import service
from billbyte.customers import repository as customers
from billbyte.jobs.service import enqueue
from billbyte.kit.pagination import ListResponse
from billbyte.kit.vendors import Vendor
from billbyte.partners import repository as partners

router = APIRouter(tags=["service management"])


class ActionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=500)


class PurgeIn(ActionIn):
    confirm: str = Field(description="The customer's external_id, to confirm the purge.")


class ServiceActionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    object: str = "service_action"
    customer_id: str
    action: str
    state: str
    actor: str
    reason: str | None
    results: dict[str, Any]
    attempts: int
    created_at: datetime
    completed_at: datetime | None


class SyncOut(BaseModel):
    object: str = "partner_account_sync"
    partner_account_id: str
    interval_minutes: int | None
    last_attempt_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None
    consecutive_failures: int
    data_until: str | None
    data_lag_seconds: int | None
    last_import_ids: list[str]


def _action(
    uow: Any,
    subject: Any,
    runtime: Any,
    customer_id: str,
    action: str,
    reason: str | None,
    confirm: str | None = None,
) -> ServiceActionOut:
    customer = customers.get_customer(uow.session, subject.msp_id, customer_id)
    item = service.request_action(
        uow.session,
        subject,
        customer,
        action,
        confirm=confirm,
        reason=reason,
        purge_hold=timedelta(hours=runtime.settings.purge_hold_hours),
    )
    uow.commit()
    return ServiceActionOut.model_validate(item)


@router.post(
    "/v1/customers/{customer_id}/suspend",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Suspend the customer's services on every vendor",
    response_model=ServiceActionOut,
    responses={**WRITE, **CONFLICT},
)
def suspend_customer(
    customer_id: str, body: ActionIn, subject: Subject, uow: Uow, runtime: RuntimeDep
) -> ServiceActionOut:
    return _action(uow, subject, runtime, customer_id, "suspend", body.reason)


@router.post(
    "/v1/customers/{customer_id}/resume",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Resume the customer's suspended services",
    response_model=ServiceActionOut,
    responses={**WRITE, **CONFLICT},
)
def resume_customer(
    customer_id: str, body: ActionIn, subject: Subject, uow: Uow, runtime: RuntimeDep
) -> ServiceActionOut:
    return _action(uow, subject, runtime, customer_id, "resume", body.reason)


@router.post(
    "/v1/customers/{customer_id}/purge",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Purge a suspended customer's vendor accounts (after the hold)",
    response_model=ServiceActionOut,
    responses={**WRITE, **CONFLICT},
)
def purge_customer(
    customer_id: str, body: PurgeIn, subject: Subject, uow: Uow, runtime: RuntimeDep
) -> ServiceActionOut:
    return _action(uow, subject, runtime, customer_id, "purge", body.reason, body.confirm)


@router.get(
    "/v1/customers/{customer_id}/service-actions",
    summary="The customer's suspend/resume/purge history",
    response_model=ListResponse[ServiceActionOut],
    responses=READ_ONE,
)
def list_service_actions(
    customer_id: str, subject: Subject, uow: Uow
) -> ListResponse[ServiceActionOut]:
    customer = customers.get_customer(uow.session, subject.msp_id, customer_id)
    return ListResponse(
        data=[
            ServiceActionOut.model_validate(a)
            for a in service.actions_for(uow.session, subject, customer.id)
        ]
    )


@router.get(
    "/v1/service-actions/{action_id}",
    summary="A service action with per-vendor results",
    response_model=ServiceActionOut,
    responses=READ_ONE,
)
def get_service_action(action_id: str, subject: Subject, uow: Uow) -> ServiceActionOut:
    return ServiceActionOut.model_validate(service.get_action(uow.session, subject, action_id))


@router.post(
    "/v1/customers/{customer_id}/vendors/{vendor}/retry",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Retry failed provisioning",
    responses={**WRITE, **CONFLICT},
)
def retry_provisioning(
    customer_id: str, vendor: Vendor, subject: Subject, uow: Uow
) -> dict[str, str]:
    customer = customers.get_customer(uow.session, subject.msp_id, customer_id)
    state = service.retry_provisioning(uow.session, subject, customer.id, vendor.value)
    uow.commit()
    return {"vendor": state.vendor, "state": state.state}


@router.get(
    "/v1/partner-accounts/{partner_account_id}/sync",
    summary="Collection status: last success, data lag, last error",
    response_model=SyncOut,
    responses=READ_ONE,
)
def partner_sync(partner_account_id: str, subject: Subject, uow: Uow) -> SyncOut:
    return SyncOut(**service.sync_status(uow.session, subject, partner_account_id))


@router.post(
    "/v1/partner-accounts/{partner_account_id}/collect",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Collect usage now (queued)",
    responses=WRITE,
)
def collect_now(partner_account_id: str, subject: Subject, uow: Uow) -> dict[str, str]:
    subject.require_write()
    account = partners.get_account(uow.session, subject.msp_id, partner_account_id)
    enqueue(
        uow.session,
        service.COLLECT,
        account.id,
        {"partner_account_id": account.id},
        msp_id=account.msp_id,
    )
    uow.commit()
    return {"partner_account_id": account.id, "status": "queued"}

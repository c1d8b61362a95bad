"""The connector framework: what the API and the jobs share.

Connectors only talk to vendors. This module builds their context, makes every vendor call
(retrying transient failures: tenacity inside a job, then the job queue's own backoff),
requests service actions and provisioning retries, and collects usage through the ordinary
import pipeline. The job handlers that record what vendors return (states, links, audit,
webhooks) are in ``connectors.tasks``.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from billbyte.audit.service import record
from billbyte.auth.roles import Role
from billbyte.auth.subject import AuthSubject
from billbyte.connectors import repository
from billbyte.connectors.base import MAX_VENDOR_MESSAGE_CHARS, PartnerContext, VendorError
from billbyte.connectors.models import PartnerSync, ServiceAction
from billbyte.connectors.vendors import connector_for
from billbyte.customers import repository as customers
from billbyte.customers.models import Customer, CustomerVendor
from billbyte.db.engine import assert_no_open_transaction
from billbyte.jobs import follow_up
from billbyte.jobs.service import enqueue
from billbyte.kit.clock import utcnow
from billbyte.kit.errors import Conflict, InvalidInput, NotFound
from billbyte.kit.outbound import OutboundPolicy, short_message
from billbyte.kit.repository import get_owned
from billbyte.partners import repository as partners
from billbyte.partners.models import PartnerAccount
from billbyte.runtime import Runtime
from billbyte.usage import service as usage

log = logging.getLogger(__name__)
T = TypeVar("T")

SERVICE_ACTION = "service_action"
COLLECT = "collect"
MAX_RETRY_AFTER = 30.0  # longer hints are left to the job queue's own backoff

# Which customer states each action may start from, and where it leads.
TRANSITIONS = {
    "suspend": ({"active", "suspension_requested"}, "suspended"),
    "resume": ({"suspended", "suspension_requested"}, "active"),
    "purge": ({"suspended"}, "purged"),
}


def system_subject(msp_id: str, actor: str = "system:connectors") -> AuthSubject:
    return AuthSubject(msp_id=msp_id, actor=actor, role=Role.ADMIN)


def context_for(runtime: Runtime, account: PartnerAccount) -> PartnerContext:
    return PartnerContext(
        partner_account_id=account.id,
        vendor=account.vendor,
        vendor_account_id=account.vendor_account_id,
        endpoint_url=account.endpoint_url,
        sandbox=account.sandbox,
        credentials=partners.credentials_of(account, runtime.secret_key) or {},
        outbound=OutboundPolicy.from_settings(runtime.settings),
    )


def call_vendor(function: Callable[[], T], attempts: int = 3) -> T:
    """Retry transient vendor failures (429, 5xx, timeouts) with exponential backoff.

    Never inside a database transaction: a vendor that hangs would hold the transaction (on
    SQLite the write lock of the whole installation) for as long as it hangs."""
    assert_no_open_transaction("A vendor call")
    backoff = wait_exponential(multiplier=0.2, max=5)

    def wait(state: RetryCallState) -> float:
        # Honour the vendor's Retry-After when it asks for longer than our backoff.
        error = state.outcome.exception() if state.outcome else None
        hinted = getattr(error, "retry_after", None) or 0.0
        return float(min(max(hinted, backoff(state)), MAX_RETRY_AFTER))

    retrying = Retrying(
        retry=retry_if_exception(lambda e: isinstance(e, VendorError) and e.retryable),
        stop=stop_after_attempt(attempts),
        wait=wait,
        reraise=True,
    )
    return retrying(function)


# --- provisioning --------------------------------------------------------------------


def retry_provisioning(
    session: Session, subject: AuthSubject, customer_id: str, vendor: str
) -> CustomerVendor:
    subject.require_write()
    state = customers.vendor_state(session, subject.msp_id, customer_id, vendor)
    if state is None:
        raise NotFound(f"The customer has no {vendor} provisioning.")
    if state.state != "failed":
        raise Conflict(f"{vendor} provisioning is {state.state}, not failed.")
    account = partners.active_account_for(session, subject.msp_id, vendor)
    if account is None:
        raise InvalidInput(f"The MSP has no active {vendor} partner account.")
    state.state, state.partner_account_id, state.reference = "pending", account.id, None
    follow_up.provisioning_requested(session, state.msp_id, state.id)
    return state


# --- service management ----------------------------------------------------------------


def request_action(
    session: Session,
    subject: AuthSubject,
    customer: Customer,
    action: str,
    *,
    confirm: str | None = None,
    reason: str | None = None,
    purge_hold: timedelta = timedelta(days=30),
) -> ServiceAction:
    subject.require_write()
    if action not in TRANSITIONS:
        raise InvalidInput(f"Unknown action {action!r}.")
    allowed, _ = TRANSITIONS[action]
    if customer.status not in allowed:
        raise Conflict(
            f"Cannot {action} a customer that is {customer.status}.", code="invalid_transition"
        )
    running = repository.running_action(session, customer.id)
    if running:
        raise Conflict(f"Service action {running} is still in progress.", code="action_in_progress")
    if action == "purge":
        if confirm != customer.external_id:
            raise InvalidInput(
                "Purging deletes the customer's vendor accounts: confirm with "
                '{"confirm": "<the customer\'s external_id>"}.',
                code="confirmation_required",
                field="confirm",
            )
        suspended_at = session.scalar(
            select(ServiceAction.completed_at)
            .where(
                ServiceAction.customer_id == customer.id,
                ServiceAction.action == "suspend",
                ServiceAction.state == "completed",
            )
            .order_by(ServiceAction.id.desc())
        )
        if suspended_at is None or utcnow() - suspended_at < purge_hold:
            raise Conflict(
                f"Purge is allowed {purge_hold} after suspension (suspended at {suspended_at}).",
                code="purge_hold",
            )
    item = ServiceAction(
        msp_id=customer.msp_id,
        customer_id=customer.id,
        action=action,
        actor=subject.actor,
        reason=reason,
        results={
            s.vendor: {"state": "pending"}
            for s in customers.vendor_states(session, customer.id)
            if s.vendor_identifier
        },
    )
    session.add(item)
    session.flush()
    record(
        session,
        subject,
        f"customer.{action}_requested",
        "customer",
        customer.id,
        before={"status": customer.status},
        after={"action_id": item.id, "reason": reason},
    )
    enqueue(session, SERVICE_ACTION, item.id, {"action_id": item.id}, msp_id=item.msp_id)
    return item


def suspension_requested(session: Session, customer: Customer) -> None:
    """Credit control's request: suspend on the vendors (system actor, reason recorded).
    Called in credit control's transaction, or by ``tasks.suspension_job`` when credit
    control records the request as a job."""
    item = ServiceAction(
        msp_id=customer.msp_id,
        customer_id=customer.id,
        action="suspend",
        actor="system:credit",
        reason="credit threshold reached",
        results={
            s.vendor: {"state": "pending"}
            for s in customers.vendor_states(session, customer.id)
            if s.vendor_identifier
        },
    )
    session.add(item)
    session.flush()
    enqueue(session, SERVICE_ACTION, item.id, {"action_id": item.id}, msp_id=item.msp_id)


def get_action(session: Session, subject: AuthSubject, action_id: str) -> ServiceAction:
    return get_owned(session, ServiceAction, subject.msp_id, action_id, what="service action")


def actions_for(session: Session, subject: AuthSubject, customer_id: str) -> list[ServiceAction]:
    return list(
        session.scalars(
            select(ServiceAction)
            .where(ServiceAction.customer_id == customer_id, ServiceAction.msp_id == subject.msp_id)
            .order_by(ServiceAction.id)
        )
    )


# --- collection -------------------------------------------------------------------------


def sync_for(session: Session, account: PartnerAccount, interval: int = 60) -> PartnerSync:
    sync = repository.sync_of(session, account.id)
    if sync is None:
        sync = PartnerSync(
            msp_id=account.msp_id, partner_account_id=account.id, interval_minutes=interval
        )
        session.add(sync)
        session.flush()
    return sync


def collect(runtime: Runtime, partner_account_id: str) -> dict[str, Any]:
    """Collect usage since the watermark and import each delivery; the watermark moves only
    after every delivery is imported, so a crash re-collects (imports are idempotent)."""
    with runtime.uow() as uow:
        account = uow.session.get(PartnerAccount, partner_account_id)
        if account is None:
            raise NotFound(f"No partner account {partner_account_id!r}.")
        sync = sync_for(uow.session, account, runtime.settings.collect_interval_minutes)
        sync.last_attempt_at = utcnow()
        watermark = sync.watermark
        ctx = context_for(runtime, account)
        msp_id = account.msp_id
        uow.commit()
    subject = system_subject(msp_id, "system:collector")
    connector = connector_for(ctx.vendor)
    work = Path(tempfile.mkdtemp(prefix="collect-", dir=runtime.settings.usage_store_dir))
    imported: list[str] = []
    try:
        collection = call_vendor(lambda: connector.collect_usage(ctx, watermark, work))
        for delivery in collection.deliveries:
            files = usage.expand_manifests([(p, p.name) for p in delivery.paths])
            item = usage.import_files(
                runtime,
                subject,
                partner_account_id,
                files,
                requested_format=delivery.format,
                report=delivery.report,
            )
            imported.append(item.id)
    except Exception as exc:
        with runtime.uow() as uow:
            failed_sync = repository.sync_of(uow.session, partner_account_id)
            assert failed_sync is not None
            # Shown to the MSP: one short line, never a whole answer of whatever was reached.
            failed_sync.last_error = short_message(
                f"{type(exc).__name__}: {getattr(exc, 'detail', None) or exc}",
                MAX_VENDOR_MESSAGE_CHARS,
            )
            failed_sync.consecutive_failures += 1
            uow.commit()
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    with runtime.uow() as uow:
        done_sync = repository.sync_of(uow.session, partner_account_id)
        assert done_sync is not None
        done_sync.watermark = collection.watermark
        done_sync.data_until = collection.data_until or sync.data_until
        done_sync.last_success_at = utcnow()
        done_sync.last_error = None
        done_sync.consecutive_failures = 0
        done_sync.last_import_ids = imported
        uow.commit()
    return {
        "partner_account_id": partner_account_id,
        "imports": imported,
        "watermark": collection.watermark,
    }


def schedule_due_collections(runtime: Runtime, now: datetime | None = None) -> int:
    """Enqueue a collection for every sandbox or credentialled partner account whose
    interval has passed since its last attempt."""
    now = now or utcnow()
    count = 0
    with runtime.uow() as uow:
        accounts = uow.session.scalars(
            select(PartnerAccount).where(PartnerAccount.status == "active")
        )
        for account in accounts:
            if not (account.sandbox or account.credentials_encrypted):
                continue
            sync = sync_for(uow.session, account, runtime.settings.collect_interval_minutes)
            due = sync.last_attempt_at is None or now - sync.last_attempt_at >= timedelta(
                minutes=sync.interval_minutes
            )
            if due:
                enqueue(
                    uow.session,
                    COLLECT,
                    account.id,
                    {"partner_account_id": account.id},
                    msp_id=account.msp_id,
                )
                count += 1
        uow.commit()
    return count


def sync_status(session: Session, subject: AuthSubject, partner_account_id: str) -> dict[str, Any]:
    account = partners.get_account(session, subject.msp_id, partner_account_id)
    sync = repository.sync_of(session, account.id)
    now = utcnow()
    lag = None
    if sync and sync.data_until:
        try:
            newest = datetime.fromisoformat(sync.data_until.replace("Z", "+00:00"))
            lag = int((now - newest).total_seconds())
        except ValueError:
            lag = None
    return {
        "object": "partner_account_sync",
        "partner_account_id": account.id,
        "interval_minutes": sync.interval_minutes if sync else None,
        "last_attempt_at": sync.last_attempt_at if sync else None,
        "last_success_at": sync.last_success_at if sync else None,
        "last_error": sync.last_error if sync else None,
        "consecutive_failures": sync.consecutive_failures if sync else 0,
        "data_until": sync.data_until if sync else None,
        "data_lag_seconds": lag,
        "last_import_ids": list(sync.last_import_ids or []) if sync else [],
    }

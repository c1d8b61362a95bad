"""The connector framework: provisioning, collection and service management as jobs.

Connectors only talk to vendors; this module records what they return, retries transient
failures (tenacity inside a job, then the job queue's own backoff), links provisioned vendor
accounts to customers, imports collected usage through the ordinary import pipeline, and
keeps an audit trail and webhooks for every state change.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
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
from billbyte.connectors.base import (
    MAX_VENDOR_MESSAGE_CHARS,
    CustomerSpec,
    PartnerContext,
    ProvisionResult,
    VendorError,
)
from billbyte.connectors.models import CustomerVendor, PartnerSync, ServiceAction
from billbyte.connectors.registry import connector_for
from billbyte.customers.models import Customer, VendorAccount
from billbyte.db.engine import assert_no_open_transaction
from billbyte.jobs.service import enqueue, handler
from billbyte.kit.clock import utcnow
from billbyte.kit.errors import Conflict, InvalidInput, NotFound
from billbyte.kit.outbound import OutboundPolicy, short_message
from billbyte.partners import service as partners
from billbyte.partners.models import PartnerAccount
from billbyte.runtime import Runtime

log = logging.getLogger(__name__)
T = TypeVar("T")

PROVISION = "provision"
SERVICE_ACTION = "service_action"
COLLECT = "collect"
POLL_DELAY = 2.0
MAX_RETRY_AFTER = 30.0  # longer hints are left to the job queue's own backoff
ACTIONS = ("suspend", "resume", "purge")

# Which customer states each action may start from, and where it leads.
TRANSITIONS = {
    "suspend": ({"active", "suspension_requested"}, "suspended"),
    "resume": ({"suspended", "suspension_requested"}, "active"),
    "purge": ({"suspended"}, "purged"),
}


def _system(msp_id: str, actor: str = "system:connectors") -> AuthSubject:
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


def _partner_for(session: Session, msp_id: str, vendor: str) -> PartnerAccount | None:
    return session.scalar(
        select(PartnerAccount)
        .where(
            PartnerAccount.msp_id == msp_id,
            PartnerAccount.vendor == vendor,
            PartnerAccount.status == "active",
        )
        .order_by(PartnerAccount.id)
    )


# --- provisioning --------------------------------------------------------------------


def request_provisioning(session: Session, customer: Customer, vendors: list[str]) -> None:
    """Called in the customer's creation transaction: one pending state and job per vendor."""
    for vendor in vendors:
        account = _partner_for(session, customer.msp_id, vendor)
        state = CustomerVendor(
            msp_id=customer.msp_id,
            customer_id=customer.id,
            vendor=vendor,
            partner_account_id=account.id if account else None,
        )
        if account is None:
            state.state = "failed"
            state.message = f"The MSP has no active {vendor} partner account."
        session.add(state)
        session.flush()
        if account is not None:
            enqueue(session, PROVISION, state.id, {"customer_vendor_id": state.id})


def states_for(session: Session, customer_id: str) -> list[CustomerVendor]:
    return list(
        session.scalars(
            select(CustomerVendor)
            .where(CustomerVendor.customer_id == customer_id)
            .order_by(CustomerVendor.vendor)
        )
    )


@dataclass(frozen=True)
class _ProvisionCall:
    """What a provisioning attempt needs from the database, read before the vendor call."""

    vendor: str
    ctx: PartnerContext
    reference: str | None
    spec: CustomerSpec
    idempotency_key: str


@handler(PROVISION)
def provision_job(runtime: Runtime, payload: dict[str, Any]) -> None:
    """Read and commit, call the vendor outside any transaction, record in a new one.

    A crash between the call and the record re-runs the job: the call is idempotent (the
    vendor deduplicates on the idempotency key) and recording skips what is already done."""
    state_id = payload["customer_vendor_id"]
    call = _provision_call(runtime, state_id)
    if call is None:
        return
    connector = connector_for(call.vendor)
    try:
        if call.reference:
            reference = call.reference
            result = call_vendor(lambda: connector.poll_provisioning(call.ctx, reference))
        else:
            result = call_vendor(
                lambda: connector.provision_customer(
                    call.ctx, call.spec, idempotency_key=call.idempotency_key
                )
            )
    except VendorError as exc:
        with runtime.uow() as uow:
            state = uow.session.get(CustomerVendor, state_id)
            if state is None or state.state != "pending":
                return
            state.message = exc.message
            if not exc.retryable:
                _set_failed(uow.session, state, exc.message)
            uow.commit()
        if exc.retryable:
            raise  # the job queue retries later with backoff
        return
    with runtime.uow() as uow:
        _record_provisioning(uow.session, state_id, result)
        uow.commit()


def _provision_call(runtime: Runtime, state_id: str) -> _ProvisionCall | None:
    with runtime.uow() as uow:
        session = uow.session
        state = session.get(CustomerVendor, state_id)
        if state is None or state.state in ("active", "suspended", "purged", "failed"):
            return None
        customer = session.get(Customer, state.customer_id)
        account = session.get(PartnerAccount, state.partner_account_id)
        assert customer is not None and account is not None
        state.attempts += 1
        call = _ProvisionCall(
            vendor=account.vendor,
            ctx=context_for(runtime, account),
            reference=state.reference,
            spec=CustomerSpec(
                customer_id=customer.id,
                external_id=customer.external_id,
                name=customer.name,
                country=customer.country,
                email_domain=f"{_slug(customer.external_id)}.customers."
                f"{_slug(customer.msp_id)}.billbyte.example",
            ),
            idempotency_key=f"{customer.id}:{state.vendor}",
        )
        uow.commit()
    return call


def _record_provisioning(session: Session, state_id: str, result: ProvisionResult) -> None:
    state = session.get(CustomerVendor, state_id)
    if state is None or state.state != "pending":
        return  # recorded already (a re-run after a crash, or a concurrent run)
    customer = session.get(Customer, state.customer_id)
    account = session.get(PartnerAccount, state.partner_account_id)
    assert customer is not None and account is not None
    state.reference = result.reference
    state.message = result.message
    if result.state == "pending":
        enqueue(session, PROVISION, state.id, {"customer_vendor_id": state.id}, delay=POLL_DELAY)
    elif result.state == "active":
        state.state = "active"
        state.vendor_identifier = result.vendor_identifier
        state.portal_url = result.portal_url
        _link(session, customer, account, result.vendor_identifier, result.kind)
        record(
            session,
            _system(customer.msp_id),
            "vendor.provisioned",
            "customer",
            customer.id,
            before=None,
            after={"vendor": state.vendor, "vendor_identifier": result.vendor_identifier},
        )
    elif result.extra.get("reprovision"):
        # The vendor refused a repeated creation of what already exists: provisioning
        # again finds and reuses it (AWS answers EMAIL_ALREADY_EXISTS to a retry).
        state.reference = None
        enqueue(session, PROVISION, state.id, {"customer_vendor_id": state.id}, delay=POLL_DELAY)
    else:
        _set_failed(session, state, result.message or "provisioning failed")


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")[:40] or "x"


def _set_failed(session: Session, state: CustomerVendor, message: str) -> None:
    state.state = "failed"
    state.message = message
    record(
        session,
        _system(state.msp_id),
        "vendor.provisioning_failed",
        "customer",
        state.customer_id,
        before=None,
        after={"vendor": state.vendor, "reason": message},
    )


def _link(
    session: Session,
    customer: Customer,
    account: PartnerAccount,
    identifier: str | None,
    kind: str | None,
) -> None:
    if not identifier:
        return
    from billbyte.customers import service as customers
    from billbyte.customers.schemas import VendorAccountCreate, VendorAccountKind

    existing = session.scalar(
        select(VendorAccount).where(
            VendorAccount.partner_account_id == account.id,
            VendorAccount.vendor_identifier == identifier,
        )
    )
    if existing is not None:
        return
    customers.link_vendor_account(
        session,
        _system(customer.msp_id),
        customer.id,
        VendorAccountCreate(
            partner_account_id=account.id,
            vendor_identifier=identifier,
            kind=VendorAccountKind(kind) if kind else None,
        ),
    )


def retry_provisioning(
    session: Session, subject: AuthSubject, customer_id: str, vendor: str
) -> CustomerVendor:
    subject.require_write()
    state = session.scalar(
        select(CustomerVendor).where(
            CustomerVendor.customer_id == customer_id,
            CustomerVendor.vendor == vendor,
            CustomerVendor.msp_id == subject.msp_id,
        )
    )
    if state is None:
        raise NotFound(f"The customer has no {vendor} provisioning.")
    if state.state != "failed":
        raise Conflict(f"{vendor} provisioning is {state.state}, not failed.")
    account = _partner_for(session, subject.msp_id, vendor)
    if account is None:
        raise InvalidInput(f"The MSP has no active {vendor} partner account.")
    state.state, state.partner_account_id, state.reference = "pending", account.id, None
    enqueue(session, PROVISION, state.id, {"customer_vendor_id": state.id})
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
    running = session.scalar(
        select(ServiceAction.id).where(
            ServiceAction.customer_id == customer.id, ServiceAction.state == "in_progress"
        )
    )
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
            for s in states_for(session, customer.id)
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
    enqueue(session, SERVICE_ACTION, item.id, {"action_id": item.id})
    return item


# What each action leaves behind: the result state of the vendor, the vendor state.
_DONE = {"suspend": "suspended", "resume": "active_again", "purge": "purged"}
_VENDOR_STATE = {"suspend": "suspended", "resume": "active", "purge": "purged"}


@dataclass(frozen=True)
class _ActionCall:
    vendor: str
    ctx: PartnerContext
    vendor_identifier: str


@handler(SERVICE_ACTION)
def service_action_job(runtime: Runtime, payload: dict[str, Any]) -> None:
    """Read and commit, call each vendor outside any transaction, record in a new one.

    Suspend, resume and purge are idempotent at the vendors, so a crash between the calls
    and the record simply calls again on the re-run."""
    action_id = payload["action_id"]
    planned = _plan_action(runtime, action_id)
    if planned is None:
        return
    action, calls = planned
    outcomes: dict[str, dict[str, Any]] = {}
    for call in calls:
        connector = connector_for(call.vendor)
        method = {
            "suspend": connector.suspend,
            "resume": connector.resume,
            "purge": connector.purge,
        }[action]
        try:
            outcome = call_vendor(
                lambda m=method, c=call.ctx, i=call.vendor_identifier: m(c, i)  # type: ignore[misc]
            )
        except VendorError as exc:
            outcomes[call.vendor] = {
                "state": "failed",
                "message": exc.message,
                "retryable": exc.retryable,
            }
            continue
        if outcome.state == "pending":
            outcomes[call.vendor] = {"state": "pending", "reference": outcome.reference}
        else:
            outcomes[call.vendor] = {"state": _DONE[action], "message": outcome.message}
    with runtime.uow() as uow:
        retry_later = _record_action(uow.session, action_id, outcomes)
        uow.commit()
    if retry_later:
        raise VendorError(f"{action} not finished on every vendor: {outcomes}", retryable=True)


def _plan_action(runtime: Runtime, action_id: str) -> tuple[str, list[_ActionCall]] | None:
    with runtime.uow() as uow:
        session = uow.session
        item = session.get(ServiceAction, action_id)
        if item is None or item.state != "in_progress":
            return None
        item.attempts += 1
        calls = []
        for state in states_for(session, item.customer_id):
            if (
                not state.vendor_identifier
                or item.results.get(state.vendor, {}).get("state") in _DONE.values()
            ):
                continue
            account = session.get(PartnerAccount, state.partner_account_id)
            assert account is not None
            calls.append(
                _ActionCall(state.vendor, context_for(runtime, account), state.vendor_identifier)
            )
        action = item.action
        uow.commit()
    return action, calls


def _record_action(session: Session, action_id: str, outcomes: dict[str, dict[str, Any]]) -> bool:
    """Record the vendors' outcomes; True when some vendor must be asked again later."""
    item = session.get(ServiceAction, action_id)
    if item is None or item.state != "in_progress":
        return False  # recorded already
    customer = session.get(Customer, item.customer_id)
    assert customer is not None
    results = dict(item.results)
    states = {s.vendor: s for s in states_for(session, customer.id)}
    for vendor, outcome in outcomes.items():
        if results.get(vendor, {}).get("state") in _DONE.values():
            continue  # a concurrent run finished this vendor first
        results[vendor] = outcome
        if outcome["state"] == _DONE[item.action] and vendor in states:
            states[vendor].state = _VENDOR_STATE[item.action]
    item.results = results
    retry_later = any(
        r.get("state") == "pending" or (r.get("state") == "failed" and r.get("retryable"))
        for v, r in results.items()
        if v in outcomes
    )
    if retry_later:
        return True
    failed = [
        v for v, r in results.items() if r.get("state") == "failed" and not r.get("retryable")
    ]
    if failed:
        item.state = "failed"
        item.completed_at = utcnow()
        record(
            session,
            _system(item.msp_id),
            f"customer.{item.action}_failed",
            "customer",
            customer.id,
            before=None,
            after={"results": results},
        )
    else:
        _complete(session, item, customer)
    return False


def _complete(session: Session, item: ServiceAction, customer: Customer) -> None:
    from billbyte.webhooks import service as webhooks

    _, target = TRANSITIONS[item.action]
    before = customer.status
    customer.status = target
    item.state = "completed"
    item.completed_at = utcnow()
    record(
        session,
        _system(item.msp_id, f"action:{item.id}"),
        f"customer.{target}",
        "customer",
        customer.id,
        before={"status": before},
        after={"status": target, "results": item.results},
    )
    event = {
        "suspend": "service.suspended",
        "resume": "service.resumed",
        "purge": "service.purged",
    }[item.action]
    if event != "service.purged":
        webhooks.emit(
            session,
            item.msp_id,
            event,
            {
                "customer_id": customer.id,
                "external_id": customer.external_id,
                "action_id": item.id,
                "results": item.results,
            },
        )


def suspension_requested(session: Session, customer: Customer) -> None:
    """Credit control's request: suspend on the vendors (system actor, reason recorded)."""
    item = ServiceAction(
        msp_id=customer.msp_id,
        customer_id=customer.id,
        action="suspend",
        actor="system:credit",
        reason="credit threshold reached",
        results={
            s.vendor: {"state": "pending"}
            for s in states_for(session, customer.id)
            if s.vendor_identifier
        },
    )
    session.add(item)
    session.flush()
    enqueue(session, SERVICE_ACTION, item.id, {"action_id": item.id})


def get_action(session: Session, subject: AuthSubject, action_id: str) -> ServiceAction:
    item = session.scalar(
        select(ServiceAction).where(
            ServiceAction.id == action_id, ServiceAction.msp_id == subject.msp_id
        )
    )
    if item is None:
        raise NotFound(f"No service action {action_id!r}.")
    return item


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
    sync = session.scalar(select(PartnerSync).where(PartnerSync.partner_account_id == account.id))
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
    subject = _system(msp_id, "system:collector")
    connector = connector_for(ctx.vendor)
    work = Path(tempfile.mkdtemp(prefix="collect-", dir=runtime.settings.usage_store_dir))
    imported: list[str] = []
    try:
        collection = call_vendor(lambda: connector.collect_usage(ctx, watermark, work))
        from billbyte.usage import service as usage

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
            failed_sync = uow.session.scalar(
                select(PartnerSync).where(PartnerSync.partner_account_id == partner_account_id)
            )
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
        done_sync = uow.session.scalar(
            select(PartnerSync).where(PartnerSync.partner_account_id == partner_account_id)
        )
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


@handler(COLLECT)
def collect_job(runtime: Runtime, payload: dict[str, Any]) -> None:
    collect(runtime, payload["partner_account_id"])


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
                enqueue(uow.session, COLLECT, account.id, {"partner_account_id": account.id})
                count += 1
        uow.commit()
    return count


def sync_status(session: Session, subject: AuthSubject, partner_account_id: str) -> dict[str, Any]:
    account = partners.get(session, subject, partner_account_id)
    sync = session.scalar(select(PartnerSync).where(PartnerSync.partner_account_id == account.id))
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

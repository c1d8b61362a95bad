"""The connectors' jobs: provisioning, service actions and collection.

Each job reads what it needs and commits, calls the vendor outside any transaction (through
``service.call_vendor``), then records the outcome in a new short transaction, idempotently.
Provisioning is requested by customers (``jobs.follow_up.provisioning_requested``) in the
customer's own transaction; service actions and collections by ``connectors.service``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from billbyte.audit.service import record
from billbyte.connectors import repository
from billbyte.connectors.base import CustomerSpec, PartnerContext, ProvisionResult, VendorError
from billbyte.connectors.models import ServiceAction
from billbyte.connectors.service import (
    COLLECT,
    SERVICE_ACTION,
    TRANSITIONS,
    call_vendor,
    collect,
    context_for,
    suspension_requested,
    system_subject,
)
from billbyte.connectors.vendors import connector_for
from billbyte.customers import repository as customers
from billbyte.customers import service as customer_service
from billbyte.customers.models import Customer, CustomerVendor
from billbyte.customers.schemas import VendorAccountCreate, VendorAccountKind
from billbyte.jobs import follow_up
from billbyte.jobs.follow_up import PROVISION
from billbyte.jobs.service import handler
from billbyte.kit.clock import utcnow
from billbyte.partners.models import PartnerAccount
from billbyte.runtime import Runtime
from billbyte.webhooks import service as webhooks

POLL_DELAY = 2.0  # seconds between polls of a provisioning the vendor has not finished


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
        follow_up.provisioning_requested(session, state.msp_id, state.id, delay=POLL_DELAY)
    elif result.state == "active":
        state.state = "active"
        state.vendor_identifier = result.vendor_identifier
        state.portal_url = result.portal_url
        _link(session, customer, account, result.vendor_identifier, result.kind)
        record(
            session,
            system_subject(customer.msp_id),
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
        follow_up.provisioning_requested(session, state.msp_id, state.id, delay=POLL_DELAY)
    else:
        _set_failed(session, state, result.message or "provisioning failed")


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")[:40] or "x"


def _set_failed(session: Session, state: CustomerVendor, message: str) -> None:
    state.state = "failed"
    state.message = message
    record(
        session,
        system_subject(state.msp_id),
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
    if customers.link_of(session, account.id, identifier) is not None:
        return
    customer_service.link_vendor_account(
        session,
        system_subject(customer.msp_id),
        customer.id,
        VendorAccountCreate(
            partner_account_id=account.id,
            vendor_identifier=identifier,
            kind=VendorAccountKind(kind) if kind else None,
        ),
    )


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
        for state in customers.vendor_states(session, item.customer_id):
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
    states = {s.vendor: s for s in customers.vendor_states(session, customer.id)}
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
            system_subject(item.msp_id),
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
    _, target = TRANSITIONS[item.action]
    before = customer.status
    customer.status = target
    item.state = "completed"
    item.completed_at = utcnow()
    record(
        session,
        system_subject(item.msp_id, f"action:{item.id}"),
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


# A suspension credit control asks for as a job (jobs.follow_up), payload {"customer_id": …}.
SUSPENSION = "suspension"


@handler(SUSPENSION)
def suspension_job(runtime: Runtime, payload: dict[str, Any]) -> None:
    """Start the suspension of a customer that credit control set to suspension_requested;
    nothing when it is no longer requested or an action is already running (a re-run)."""
    with runtime.uow() as uow:
        customer = uow.session.get(Customer, payload["customer_id"])
        if customer is None or customer.status != "suspension_requested":
            return
        if repository.running_action(uow.session, customer.id) is not None:
            return
        suspension_requested(uow.session, customer)
        uow.commit()


@handler(COLLECT)
def collect_job(runtime: Runtime, payload: dict[str, Any]) -> None:
    collect(runtime, payload["partner_account_id"])

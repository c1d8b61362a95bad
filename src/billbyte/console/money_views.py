"""The FX & credit page's data: stored rates and the FX policy through fx's service (the
functions of ``/v1/fx-rates`` and ``/v1/fx-policy``), the credit-control defaults through
credit's (``/v1/credit-policy``), and each customer's own credit settings as the
customers API reports them. Forms are checked by the API's schemas."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from billbyte.auth.subject import AuthSubject
from billbyte.console.admin_views import cursor_of, validated
from billbyte.console.common import text
from billbyte.credit import service as credit
from billbyte.credit.endpoints import CreditPolicyIn, CreditPolicyOut
from billbyte.customers import service as customers
from billbyte.fx import policy, rates
from billbyte.fx.rates import UpsertSummary
from billbyte.fx.schemas import FxPolicyIn, FxPolicyOut, FxRateOut, FxRatesPut, PolicyMode
from billbyte.kit.errors import InvalidInput
from billbyte.kit.pagination import MAX_LIMIT, ListResponse

MODES = [(m.value, m.value.replace("_", " ")) for m in PolicyMode]
ACTIONS = [("notify", "notify"), ("suspend", "suspend")]
RATES_PER_PAGE = 50


@dataclass(frozen=True)
class CustomerCredit:
    id: str
    name: str
    currency: str
    credit_limit: Decimal | None
    thresholds: list[int] | None
    action: str | None


@dataclass(frozen=True)
class Money:
    rates: ListResponse[FxRateOut]
    fx_policy: FxPolicyOut
    credit_policy: CreditPolicyOut
    customers: list[CustomerCredit]


def _currency_filter(value: str | None, field: str) -> str | None:
    value = (value or "").strip().upper()
    if not value:
        return None
    return rates.checked_currency(value, field)


def overview(
    session: Session,
    subject: AuthSubject,
    base: str | None,
    quote: str | None,
    cursor: str | None,
) -> Money:
    page = rates.list_rates(
        session,
        subject,
        base=_currency_filter(base, "base"),
        quote=_currency_filter(quote, "quote"),
        start=None,
        end=None,
        cursor=cursor_of(cursor),
        limit=RATES_PER_PAGE,
    )
    defaults = credit.policy_for(session, subject.msp_id)
    listed = customers.list_customers(
        session, subject, external_id=None, status=None, cursor=None, limit=MAX_LIMIT
    )
    return Money(
        rates=ListResponse.of(page, FxRateOut.model_validate),
        fx_policy=FxPolicyOut.build(policy.get_policy(session, subject)),
        credit_policy=CreditPolicyOut(
            thresholds=defaults.thresholds,
            action=defaults.action,
            suspend_at=defaults.suspend_at,
            prepaid_overdraft=bool(defaults.prepaid_overdraft),
        ),
        customers=[
            CustomerCredit(
                c.id, c.name, c.currency, c.credit_limit, c.credit_thresholds, c.credit_action
            )
            for c in listed.items
        ],
    )


def _whole(value: str, field: str) -> int:
    if not (value.isascii() and value.isdigit() and len(value) <= 6):
        raise InvalidInput(f"{field} must be a whole number.", field=field)
    return int(value)


def add_rates(session: Session, subject: AuthSubject, form: FormData) -> UpsertSummary:
    """Rates of one day: one ``QUOTE RATE`` pair per line against one base currency."""
    day, base = text(form, "date"), text(form, "base").upper()
    entries = []
    for number, line in enumerate(text(form, "rates").splitlines()[:500], start=1):
        if not line.strip():
            continue
        parts = line.replace("=", " ").split()
        if len(parts) != 2:
            raise InvalidInput(
                f"rates line {number}: write 'QUOTE RATE', e.g. 'USD 1.0832'.", field="rates"
            )
        entries.append({"base": base, "quote": parts[0].upper(), "date": day, "rate": parts[1]})
    if not entries:
        raise InvalidInput("Enter at least one rate.", field="rates")
    body = validated(FxRatesPut, {"rates": entries, "source": "manual"})
    return rates.put_rates(session, subject, body)


def set_fx_policy(session: Session, subject: AuthSubject, form: FormData) -> None:
    body = validated(
        FxPolicyIn,
        {
            "base_currency": text(form, "base_currency"),
            "mode": text(form, "mode"),
            "max_staleness_days": _whole(text(form, "max_staleness_days"), "max_staleness_days"),
        },
    )
    policy.set_policy(session, subject, body)


def set_credit_policy(session: Session, subject: AuthSubject, form: FormData) -> None:
    thresholds = [
        _whole(part.strip(), "thresholds")
        for part in text(form, "thresholds").split(",")[:50]
        if part.strip()
    ]
    body = validated(
        CreditPolicyIn,
        {
            "thresholds": thresholds,
            "action": text(form, "action"),
            "suspend_at": _whole(text(form, "suspend_at"), "suspend_at"),
            "prepaid_overdraft": text(form, "prepaid_overdraft") == "yes",
        },
    )
    credit.set_policy(
        session, subject, body.thresholds, body.action, body.suspend_at, body.prepaid_overdraft
    )

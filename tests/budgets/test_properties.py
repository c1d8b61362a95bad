"""Property: the alerts that fire are exactly the thresholds at or below spend x 100 / amount.

Charge lines are written straight to the ledger (``charges.ledger.write_periods``) with amounts
in ten-thousandths, often placed on a threshold's boundary or half a cent around it, so the
rounding of the month's total to cents decides. The expected set is computed here with
``Fraction`` from the lines' exact sum rounded half-even with ``decimal`` (not with the code
under test).
"""

from __future__ import annotations

import itertools
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from billbyte.auth.roles import Role
from billbyte.auth.subject import AuthSubject
from billbyte.budgets import repository, service
from billbyte.charges import ledger
from billbyte.charges import service as charges
from billbyte.charges.ledger import Charge
from billbyte.customers.models import Customer
from billbyte.runtime import Runtime
from tests.conftest import Tenant

PERIOD = "2025-03"
TT = Decimal("0.0001")  # amounts are drawn in ten-thousandths
_numbers = itertools.count()


@pytest.fixture
def backend() -> str:
    return "sqlite"  # arithmetic and unique rows: one backend keeps it quick


def _charge(key: str, vendor: str, amount: Decimal) -> Charge:
    return Charge(
        line_key=key,
        kind="usage",
        vendor=vendor,
        partner_account_id=None,
        sub_account_id=None,
        service_category="Compute",
        service_name="VM",
        charge_category="Usage",
        pricing_unit="Hours",
        description="VM",
        quantity=Decimal(1),
        billing_currency="USD",
        cost=amount,
        list_cost=amount,
        sell=amount,
        currency="USD",
        cost_local=amount,
        list_local=amount,
        sell_local=amount,
        fx_rates=(),
        rule_ids=(),
        first_day=None,
        last_day=None,
    )


def _split(draw: Any, total: int) -> list[int]:
    """``total`` (ten-thousandths) as 1-3 parts, some possibly negative (credits)."""
    cuts = draw(st.lists(st.integers(-(10**7), 10**7), max_size=2))
    return [*cuts, total - sum(cuts)]


@st.composite
def cases(draw: Any) -> dict[str, Any]:
    amount_cents = draw(st.integers(1, 10**8))
    thresholds = sorted(draw(st.lists(st.integers(1, 1000), min_size=1, max_size=8, unique=True)))
    vendor = draw(st.sampled_from([None, "aws"]))
    if draw(st.booleans()):  # on a threshold's boundary, or a cent or half a cent off it
        threshold = draw(st.sampled_from(thresholds))
        offset = draw(st.sampled_from([0, -1, 1, -49, -50, -51, 49, 50, 51, -100, 100]))
        counted = amount_cents * threshold + offset
    else:
        counted = draw(st.integers(-(10**6), amount_cents * 1200))
    lines = [("aws", part) for part in _split(draw, counted)]
    if vendor is not None:  # another vendor's charges, which this budget does not count
        lines += [
            ("azure", part) for part in draw(st.lists(st.integers(-(10**8), 10**8), max_size=2))
        ]
    return {
        "amount": Decimal(amount_cents) / 100,
        "thresholds": thresholds,
        "vendor": vendor,
        "lines": lines,
    }


def _expected(case: dict[str, Any]) -> tuple[Decimal, set[int]]:
    counted = sum(
        (Decimal(part) * TT for vendor, part in case["lines"] if case["vendor"] in (None, vendor)),
        Decimal(0),
    )
    spend = counted.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)
    ratio = Fraction(spend) * 100 / Fraction(case["amount"])
    return spend, {t for t in case["thresholds"] if ratio >= t}


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(case=cases())
@example(  # exactly 50 % after rounding 499.995 half-even to 500.00
    case={
        "amount": Decimal("1000.00"),
        "thresholds": [50, 80],
        "vendor": None,
        "lines": [("aws", 4999950)],
    }
)
@example(  # 499.985 rounds to 499.98 (half-even): not yet 50 %
    case={
        "amount": Decimal("1000.00"),
        "thresholds": [50],
        "vendor": None,
        "lines": [("aws", 4999850)],
    }
)
def test_fired_alerts_are_the_thresholds_the_spend_reaches(
    tenant: Tenant, runtime: Runtime, case: dict[str, Any]
) -> None:
    spend, expected = _expected(case)
    subject = AuthSubject(msp_id=tenant.msp_id, actor="test", role=Role.ADMIN)
    with runtime.uow() as uow:  # never committed: each example leaves nothing behind
        session = uow.session
        number = next(_numbers)
        customer = Customer(
            msp_id=tenant.msp_id, external_id=f"P{number}", name="P", currency="USD"
        )
        session.add(customer)
        session.flush()
        budget = service.create(
            session,
            subject,
            customer.id,
            service.BudgetFields(
                amount=case["amount"], thresholds=case["thresholds"], vendor=case["vendor"]
            ),
        )
        lines = {
            f"line-{i}": _charge(f"line-{i}", vendor, Decimal(part) * TT)
            for i, (vendor, part) in enumerate(case["lines"])
        }
        ledger.write_periods(session, tenant.msp_id, PERIOD, {customer.id: lines})

        fired = service.evaluate(session, tenant.msp_id, PERIOD, [customer])
        assert fired == len(expected)
        alerts = repository.alerts_of(session, tenant.msp_id, customer.id, PERIOD)
        assert {a.threshold for a in alerts} == expected
        assert all(a.spend == spend and a.budget_id == budget.id for a in alerts)
        # Evaluating again (a re-rating, a retried job) fires nothing more.
        assert service.evaluate(session, tenant.msp_id, PERIOD, [customer]) == 0
        assert len(repository.alerts_of(session, tenant.msp_id, customer.id, PERIOD)) == len(
            expected
        )
        if case["vendor"] is None:  # the whole month: what GET .../charges reports
            total = charges.customer_charges(session, subject, customer.id, PERIOD).total
            assert Decimal(total) == spend
        status = repository.status_for(session, tenant.msp_id, customer.id, PERIOD)
        assert [(s.spend, s.alerted) for s in status] == [(spend, tuple(sorted(expected)))]

"""Properties of the prepaid ledger, on random sequences of top-ups and (re)ratings.

The open charges of each month are chosen by Hypothesis (``_open_charges`` is replaced by
the generated figures), so rating here is "the charges of these months are now X".
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from billbyte.auth.roles import Role
from billbyte.auth.subject import AuthSubject
from billbyte.credit import prepaid
from billbyte.credit.models import CreditPolicy
from billbyte.customers.models import Customer
from billbyte.runtime import Runtime
from tests.conftest import Tenant

CENTS = st.integers(min_value=0, max_value=500_00).map(lambda c: Decimal(c) / 100)
MONTHS = st.sampled_from(["2025-01", "2025-02", "2025-03"])
STEP = st.one_of(
    st.tuples(st.just("top_up"), CENTS.filter(lambda a: a > 0)),
    st.tuples(st.just("rate"), st.dictionaries(MONTHS, CENTS, max_size=3)),
)


@pytest.fixture
def backend() -> str:
    return "sqlite"  # pure ledger arithmetic: one backend is enough and keeps it quick


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(steps=st.lists(STEP, min_size=1, max_size=8), overdraft=st.booleans())
# Found by this property: a later month whose charges fell gave funds back after an earlier,
# under-funded month had been settled, so settling again drew once more.
@example(
    steps=[
        ("top_up", Decimal("90")),
        ("rate", {"2025-02": Decimal("40")}),
        ("rate", {"2025-01": Decimal("100")}),
        ("rate", {"2025-02": Decimal("0")}),
    ],
    overdraft=False,
)
def test_balance_is_top_ups_minus_draws_and_rerating_never_draws_twice(
    tenant: Tenant,
    runtime: Runtime,
    monkeypatch: pytest.MonkeyPatch,
    steps: list[tuple[str, Any]],
    overdraft: bool,
) -> None:
    subject = AuthSubject(msp_id=tenant.msp_id, actor="test", role=Role.ADMIN)
    charges: dict[str, Decimal] = {}
    monkeypatch.setattr(prepaid, "_open_charges", lambda *_: dict(charges))
    with runtime.uow() as uow:
        session = uow.session
        policy = session.get(CreditPolicy, "crp_prop") or CreditPolicy(
            id="crp_prop", msp_id=tenant.msp_id
        )
        policy.prepaid_overdraft = overdraft
        session.add(policy)
        customer = Customer(msp_id=tenant.msp_id, external_id="P", name="P", currency="USD")
        session.add(customer)
        session.flush()
        prepaid.customer_written(session, subject, customer, Decimal(0))
        topped = Decimal(0)
        for number, (kind, value) in enumerate(steps):
            if kind == "top_up":
                prepaid.top_up(session, subject, customer, value, f"ref-{number}")
                topped += value
            else:
                charges.update(value)
                prepaid.settle(session, customer)
                # Re-rating the same charges moves nothing.
                assert prepaid.settle(session, customer) == 0
            ledger = prepaid.movements(session, customer.id)
            draws = sum((m.amount for m in ledger if m.kind == "draw_down"), Decimal(0))
            assert customer.prepaid_balance == topped + draws  # draws are negative
            assert customer.prepaid_balance == ledger[-1].balance_after if ledger else True
            for month, amount in charges.items():
                drawn = prepaid.drawn_for(session, customer.id, month)
                if overdraft:
                    assert drawn == amount
                else:
                    assert Decimal(0) <= drawn <= amount
            if not overdraft:
                assert customer.prepaid_balance >= 0
                # Funded all, or nothing is left to fund with.
                owed = sum(charges.values(), Decimal(0)) + draws
                assert owed == 0 or customer.prepaid_balance == 0
        uow.rollback()

"""The cost rollups (``analytics.models``) and their queries (``analytics.repository``).

Expected amounts are computed here from the generated usage rows with plain Decimal
arithmetic: cost × (1 + the plan's markup of the row's service) × the USD→EUR rate of the
row's day. Costs are multiples of 10 USD, markups 10 % or 20 % and rates have two decimals,
so every usage row's amount is a whole number of cents and no rounding is involved:
whatever the filter, the exact expected sums are the right answers. A second scenario with
amounts that do not fall on cents checks that every view adds up exactly to the charges.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from billbyte.analytics import repository as rollups
from billbyte.analytics.models import CostRollup
from billbyte.analytics.repository import CostFilter
from billbyte.charges.models import ClosedPeriod
from billbyte.kit.errors import InvalidInput, NotFound
from billbyte.rating import tasks as rating
from billbyte.runtime import Runtime
from tests.conftest import Tenant, make_tenant
from tests.rating.factories import HEADER, Scenario, row

D = Decimal
PERIOD, PREVIOUS = "2025-03", "2025-02"
EC2, S3, LAMBDA = "Amazon Elastic Compute Cloud", "Amazon Simple Storage Service", "AWS Lambda"
MARKUP = {EC2: D("1.1"), S3: D("1.2"), LAMBDA: D("1.2")}
SUBS = ("111111111111", "222222222222")  # the customer's
OTHER_SUB = "333333333333"  # another customer's, same MSP
REGIONS = ("eu-central-1", "us-east-1", None)
TAG_SETS: tuple[dict[str, str] | None, ...] = (
    None,
    {"env": "prod", "team": "web"},
    {"team": "web", "env": "prod"},  # the same set, keys in another order
    {"env": "dev"},
    {"team": "data"},
)
FEE = D(5)  # USD, monthly, converted at the period's last day's rate


def rate(day: date) -> Decimal:
    return D("0.90") + D(day.day) / 100 + (D("0.05") if day.month == 2 else 0)


@dataclass(frozen=True)
class Usage:
    day: date
    sub: str
    service: str
    region: str | None
    tags: dict[str, str] | None
    resource: str
    cost: Decimal

    @property
    def amount(self) -> Decimal:  # EUR, exact
        return self.cost * MARKUP[self.service] * rate(self.day)


def generate(seed: int, period: str, count: int, days: int = 12) -> list[Usage]:
    rng = random.Random(seed)
    year, month = (int(p) for p in period.split("-"))
    return [
        Usage(
            day=date(year, month, rng.randint(1, days)),
            sub=rng.choice((*SUBS, *SUBS, OTHER_SUB)),
            service=rng.choice((EC2, S3, LAMBDA)),
            region=rng.choice(REGIONS),
            tags=rng.choice(TAG_SETS),
            resource=f"res-{rng.randint(1, 15)}",
            cost=D(10 * rng.randint(1, 9)),
        )
        for _ in range(count)
    ]


def upload(s: Scenario, usage: Iterable[Usage], name: str, period: str = PERIOD) -> None:
    """A FOCUS file with tags (the factories' header has none)."""
    path = s.tmp_path / f"{name}.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=[*HEADER, "Tags"])
        writer.writeheader()
        for index, u in enumerate(usage):
            line = row(
                str(u.cost),
                day=u.day.day,
                period=period,
                sub=u.sub,
                service=u.service,
                sku=f"SKU-{name}-{index}",  # every line distinct (duplicates collapse)
                region=u.region or "",
                resource=u.resource,
            )
            writer.writerow({**line, "Tags": json.dumps(u.tags) if u.tags else ""})
    with path.open("rb") as handle:
        response = s.tenant.post(
            "/v1/usage/imports",
            data={"partner_account_id": s.accounts["aws"]},
            files={"file": (path.name, handle)},
        )
    assert response.status_code == 201, response.text


@dataclass
class World:
    s: Scenario
    customer: str
    other: str
    march: list[Usage]  # the customer's rows only
    february: list[Usage]
    uploaded: list[Usage]  # March's file, every customer's rows

    def fee_day(self, period: str) -> date:
        year, month = (int(p) for p in period.split("-"))
        return date(year, month, 1)


def build(tenant: Tenant, runtime: Runtime, tmp_path: Path) -> World:
    s = Scenario(tenant, runtime, tmp_path)
    s.account("aws")
    customer = s.customer("A", currency="EUR")
    other = s.customer("B", currency="EUR")
    for sub in SUBS:
        s.link(customer, sub)
    s.link(other, OTHER_SUB)
    s.plan(
        [
            {"vendor": "aws", "service_name": EC2, "adjustment": "markup_percent", "value": "10"},
            {"vendor": "aws", "adjustment": "markup_percent", "value": "20"},
            {"vendor": "aws", "adjustment": "fixed_fee", "value": str(FEE), "currency": "USD"},
        ]
    )
    days = [date(2025, 2, 1) + timedelta(days=n) for n in range(28 + 31)]
    s.rates(*[("USD", "EUR", d.isoformat(), str(rate(d))) for d in days])
    march, february = generate(1, PERIOD, 80), generate(2, PREVIOUS, 60)
    upload(s, march, "march")
    upload(s, february, "february", period=PREVIOUS)
    s.drain()
    mine = [u for u in march if u.sub != OTHER_SUB]
    return World(s, customer, other, mine, [u for u in february if u.sub != OTHER_SUB], march)


def fee_amount(period: str) -> Decimal:
    year, month = (int(p) for p in period.split("-"))
    last = date(year, month + 1, 1) - timedelta(days=1)
    return FEE * rate(last)


def expected_cells(world: World, period: str = PERIOD) -> list[dict[str, Any]]:
    """Every amount the customer owes in ``period``, as (day, dimension labels, amount)."""
    usage = world.march if period == PERIOD else world.february
    cells = [
        {
            "day": u.day,
            "vendor": "aws",
            "service": u.service,
            "account": u.sub,
            "region": u.region or rollups.NO_REGION,
            "tags": dict(u.tags or {}),
            "amount": u.amount,
            "resource": u.resource,
        }
        for u in usage
    ]
    cells.append(
        {
            "day": world.fee_day(period),
            "vendor": "aws",
            "service": "fee",  # the fee line's description, matched by kind below
            "account": rollups.NO_ACCOUNT,
            "region": rollups.NO_REGION,
            "tags": {},
            "amount": fee_amount(period),
            "resource": None,
        }
    )
    return cells


def fee_label(world: World) -> str:
    lines = world.s.lines(world.customer)
    return next(li["description"] for li in lines if li["kind"] == "fee")


def label(cell: dict[str, Any], dimension: str, fee: str) -> str:
    if dimension.startswith("tag:"):
        return str(cell["tags"].get(dimension[4:], rollups.UNTAGGED))
    value = cell[dimension]
    return fee if dimension == "service" and value == "fee" else str(value)


def selected(cell: dict[str, Any], f: CostFilter, fee: str) -> bool:
    return (
        (f.date_from is None or cell["day"] >= f.date_from)
        and (f.date_to is None or cell["day"] <= f.date_to)
        and (not f.vendors or cell["vendor"] in f.vendors)
        and (not f.services or label(cell, "service", fee) in f.services)
        and (not f.accounts or cell["account"] in f.accounts)
        and (not f.regions or cell["region"] in f.regions)
        and (f.tag is None or cell["tags"].get(f.tag[0], rollups.UNTAGGED) == f.tag[1])
    )


def sums(cells: Iterable[dict[str, Any]], dimension: str, fee: str) -> dict[str, Decimal]:
    out: dict[str, Decimal] = {}
    for cell in cells:
        key = label(cell, dimension, fee)
        out[key] = out.get(key, D(0)) + cell["amount"]
    return out


@pytest.fixture
def world(tenant: Tenant, runtime: Runtime, tmp_path: Path) -> World:
    return build(tenant, runtime, tmp_path)


def test_every_view_matches_the_independent_computation(
    world: World, runtime: Runtime, tenant: Tenant
) -> None:
    cells, fee = expected_cells(world), fee_label(world)
    total = sum((c["amount"] for c in cells), D(0))
    charges = world.s.charges(world.customer)
    assert D(charges["total"]) == total  # the scenario's premise: every amount on cents
    msp, customer = tenant.msp_id, world.customer
    with runtime.uow() as uow:
        session = uow.session
        assert rollups.period_total(session, msp, customer, PERIOD) == (total, "EUR")
        trend = rollups.daily_trend(session, msp, customer, PERIOD)
        assert [d for d, _ in trend] == [date(2025, 3, n) for n in range(1, 32)]
        by_day = sums(({**c, "d": c["day"].isoformat()} for c in cells), "d", fee)
        assert {d.isoformat(): a for d, a in trend} == {
            date(2025, 3, n).isoformat(): by_day.get(date(2025, 3, n).isoformat(), D(0))
            for n in range(1, 32)
        }
        for dimension in ("vendor", "service", "account", "region", "tag:env", "tag:team"):
            got = rollups.breakdown(session, msp, customer, PERIOD, dimension)
            want = sums(cells, dimension, fee)
            assert dict(got) == want, dimension
            assert [a for _, a in got] == sorted((a for _, a in got), reverse=True)
        options = rollups.filter_options(session, msp, customer, PERIOD)
        assert options.currency == "EUR"
        assert options.services == sorted({EC2, S3, LAMBDA, fee} & set(sums(cells, "service", fee)))
        assert options.accounts == sorted({*SUBS, rollups.NO_ACCOUNT})
        assert options.regions == sorted({"eu-central-1", "us-east-1", rollups.NO_REGION})
        assert options.tags == {"env": ["dev", "prod"], "team": ["data", "web"]}
        # Equal tag sets written in another key order are one tag set.
        tag_sets = {
            json.dumps(r.tags, sort_keys=True)
            for r in rollups.cost_rows(session, msp, customer, PERIOD)
        }
        assert tag_sets == {
            "{}",
            '{"env": "prod", "team": "web"}',
            '{"env": "dev"}',
            '{"team": "data"}',
        }

        # A resource is ranked per service, at its vendor cost and at the service's average
        # price of the month (the service's amount over its cost).
        cost: dict[tuple[str, str], Decimal] = {}
        for u in world.march:
            cost[(u.resource, u.service)] = cost.get((u.resource, u.service), D(0)) + u.cost
        price = {
            service: (
                sum((u.amount for u in world.march if u.service == service), D(0))
                / sum((u.cost for u in world.march if u.service == service), D(0))
            ).quantize(D("1e-18"))
            for service in (EC2, S3, LAMBDA)
        }
        amount = {k: (c * price[k[1]]).quantize(D("0.01")) for k, c in cost.items()}
        top = rollups.top_resources(session, msp, customer, PERIOD, limit=5)
        assert [r.amount for r in top] == sorted(amount.values(), reverse=True)[:5]
        assert all(amount[(r.resource_id, str(r.service_name))] == r.amount for r in top)
        by_cost = rollups.top_resources_by_cost(session, msp, customer, PERIOD, limit=7)
        assert [r.cost for r in by_cost] == sorted(cost.values(), reverse=True)[:7]
        assert all(r.currency == "EUR" and r.billing_currency == "USD" for r in top)


def test_forecast_and_month_comparison(world: World, runtime: Runtime, tenant: Tenant) -> None:
    march, february = expected_cells(world), expected_cells(world, PREVIOUS)
    fee = fee_label(world)
    today = date(2025, 3, 10)
    msp, customer = tenant.msp_id, world.customer
    total = sum((c["amount"] for c in march), D(0))
    usage_days = len({u.day for u in world.march})
    with runtime.uow() as uow:
        session = uow.session
        # The run rate: spend so far over the days with usage, times the 31 days.
        want = (total / usage_days * 31).quantize(D("0.01"))
        assert rollups.forecast(session, msp, customer, PERIOD, today) == want
        assert rollups.forecast(session, msp, customer, PERIOD, date(2025, 4, 2)) == total

        comparison = rollups.month_comparison(session, msp, customer, PERIOD, today)
        assert (comparison.period, comparison.previous_period) == (PERIOD, PREVIOUS)
        assert (comparison.days, comparison.previous_days) == (10, 10)
        now = [c for c in march if c["day"] <= today]
        then = [c for c in february if c["day"] <= date(2025, 2, 10)]
        assert comparison.current == sum((c["amount"] for c in now), D(0))
        assert comparison.previous == sum((c["amount"] for c in then), D(0))
        assert comparison.previous_full == sum((c["amount"] for c in february), D(0))
        assert comparison.delta == comparison.current - comparison.previous
        for dimension in ("service", "account", "region"):
            current, previous = sums(now, dimension, fee), sums(then, dimension, fee)
            got = comparison.drivers[dimension]
            assert {d.label: (d.previous, d.current, d.delta) for d in got} == {
                k: (
                    previous.get(k, D(0)),
                    current.get(k, D(0)),
                    current.get(k, D(0)) - previous.get(k, D(0)),
                )
                for k in set(current) | set(previous)
            }
            assert [abs(d.delta) for d in got] == sorted((abs(d.delta) for d in got), reverse=True)
        # Before the period starts nothing of it is compared.
        early = rollups.month_comparison(session, msp, customer, PERIOD, date(2025, 2, 20))
        assert (early.days, early.current, early.previous) == (0, D(0), D(0))


FILTERS = st.builds(
    CostFilter,
    date_from=st.one_of(st.none(), st.integers(1, 12).map(lambda d: date(2025, 3, d))),
    date_to=st.one_of(st.none(), st.integers(12, 31).map(lambda d: date(2025, 3, d))),
    vendors=st.sampled_from(((), ("aws",), ("gcp",))),
    services=st.lists(st.sampled_from((EC2, S3, LAMBDA)), max_size=2, unique=True).map(tuple),
    accounts=st.lists(
        st.sampled_from((*SUBS, rollups.NO_ACCOUNT, OTHER_SUB)), max_size=2, unique=True
    ).map(tuple),
    regions=st.lists(
        st.sampled_from(("eu-central-1", "us-east-1", rollups.NO_REGION)), max_size=2, unique=True
    ).map(tuple),
    tag=st.one_of(
        st.none(),
        st.sampled_from(
            (("env", "prod"), ("env", "dev"), ("env", rollups.UNTAGGED), ("team", "data"))
        ),
    ),
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    filters=FILTERS,
    dimension=st.sampled_from(("vendor", "service", "account", "region", "tag:team")),
)
def test_any_filter_adds_up_the_same_everywhere(
    world: World, runtime: Runtime, tenant: Tenant, filters: CostFilter, dimension: str
) -> None:
    fee = fee_label(world)
    cells = [c for c in expected_cells(world) if selected(c, filters, fee)]
    want = sum((c["amount"] for c in cells), D(0))
    msp, customer = tenant.msp_id, world.customer
    with runtime.uow() as uow:
        session = uow.session
        trend = rollups.daily_trend(session, msp, customer, PERIOD, filters)
        parts = rollups.breakdown(session, msp, customer, PERIOD, dimension, filters)
        rows = rollups.cost_rows(session, msp, customer, PERIOD, filters)
        total, _ = rollups.period_total(session, msp, customer, PERIOD, filters)
    assert sum((a for _, a in trend), D(0)) == want
    assert sum((a for _, a in parts), D(0)) == want
    assert sum((r.amount for r in rows), D(0)) == want
    assert total == want
    assert dict(parts) == {k: v for k, v in sums(cells, dimension, fee).items()}
    assert all(r.currency == "EUR" for r in rows)


def test_amounts_off_the_cent_still_add_up_to_the_charges(
    tenant: Tenant, runtime: Runtime, tmp_path: Path
) -> None:
    """Thirds of a cent everywhere: each charge line is split over its cells to the cent,
    so every vendor's and service's rows add up to its charge lines, and all rows to the
    total."""
    s = Scenario(tenant, runtime, tmp_path)
    s.account("aws")
    customer = s.customer("A")
    s.link(customer, SUBS[0])
    s.plan([{"vendor": "aws", "adjustment": "markup_percent", "value": "33.333"}])
    rng = random.Random(5)
    usage = [
        Usage(
            day=date(2025, 3, rng.randint(1, 28)),
            sub=SUBS[0],
            service=rng.choice((EC2, S3, LAMBDA)),
            region=rng.choice(REGIONS),
            tags=rng.choice(TAG_SETS),
            resource=f"r-{n}",
            cost=D(rng.randint(1, 10**6)) / 3000,
        )
        for n in range(150)
    ]
    usage = [
        Usage(u.day, u.sub, u.service, u.region, u.tags, u.resource, u.cost.quantize(D("1e-9")))
        for u in usage
    ]
    upload(s, usage, "thirds")
    s.drain()
    charges = s.charges(customer)
    lines = s.lines(customer)
    msp = tenant.msp_id
    with runtime.uow() as uow:
        session = uow.session
        assert rollups.period_total(session, msp, customer, PERIOD)[0] == D(charges["total"])
        assert sum((a for _, a in rollups.daily_trend(session, msp, customer, PERIOD)), D(0)) == D(
            charges["total"]
        )
        for service, amount in rollups.breakdown(session, msp, customer, PERIOD, "service"):
            assert amount == sum(
                (D(li["amount"]) for li in lines if li["service_name"] == service), D(0)
            )
        # No day is further from its exact amount than one cent per cell of that day.
        exact: dict[date, Decimal] = {}
        for u in usage:
            exact[u.day] = exact.get(u.day, D(0)) + u.cost * D("1.33333")
        cells = session.execute(
            select(CostRollup.day).where(CostRollup.customer_id == customer)
        ).all()
        per_day: dict[date, int] = {}
        for (day,) in cells:
            per_day[day] = per_day.get(day, 0) + 1
        for day, amount in rollups.daily_trend(session, msp, customer, PERIOD):
            assert abs(amount - exact.get(day, D(0))) <= D("0.01") * (per_day.get(day, 0) + 1)


def _snapshot(runtime: Runtime, customer: str) -> list[tuple[Any, ...]]:
    table = CostRollup.__table__
    with runtime.uow() as uow:
        return [
            tuple(r)
            for r in uow.session.execute(
                select(table).where(table.c.customer_id == customer).order_by(table.c.id)
            )
        ]


def test_rerating_is_idempotent_and_late_data_updates_the_rollups(
    world: World, runtime: Runtime, tenant: Tenant
) -> None:
    before = _snapshot(runtime, world.customer)
    assert before
    rating.rate_all(runtime, tenant.msp_id, PERIOD)
    rating.rate_all(runtime, tenant.msp_id, PERIOD)
    assert _snapshot(runtime, world.customer) == before

    late = [Usage(date(2025, 3, 20), SUBS[1], LAMBDA, "eu-west-1", {"env": "qa"}, "late", D(70))]
    # Vendors restate whole months: the new file replaces March's.
    upload(world.s, world.uploaded + late, "late")
    world.s.drain()
    world.march += late
    cells = expected_cells(world)
    with runtime.uow() as uow:
        session = uow.session
        total, _ = rollups.period_total(session, tenant.msp_id, world.customer, PERIOD)
        assert total == sum((c["amount"] for c in cells), D(0))
        assert total == D(world.s.charges(world.customer)["total"])
        trend = dict(rollups.daily_trend(session, tenant.msp_id, world.customer, PERIOD))
        assert trend[date(2025, 3, 20)] == D(70) * D("1.2") * rate(date(2025, 3, 20))
        env = dict(rollups.breakdown(session, tenant.msp_id, world.customer, PERIOD, "tag:env"))
        assert env["qa"] == trend[date(2025, 3, 20)]


def test_a_closed_period_keeps_its_rollups_and_late_data_lands_on_the_next_month(
    world: World, runtime: Runtime, tenant: Tenant
) -> None:
    with runtime.uow() as uow:
        uow.session.add(
            ClosedPeriod(msp_id=tenant.msp_id, customer_id=world.customer, period=PERIOD)
        )
        uow.commit()
    before = _snapshot(runtime, world.customer)
    late = [Usage(date(2025, 3, 25), SUBS[0], EC2, None, None, "late", D(40))]
    upload(world.s, world.uploaded + late, "late")
    world.s.drain()
    after = _snapshot(runtime, world.customer)
    march = [r for r in after if r[3] == PERIOD]
    assert march == [r for r in before if r[3] == PERIOD]
    # The recomputed month became adjustment lines on April: April's rollups follow them.
    april = world.s.charges(world.customer, "2025-04")
    assert april["groups"], april
    with runtime.uow() as uow:
        session = uow.session
        total, _ = rollups.period_total(session, tenant.msp_id, world.customer, "2025-04")
        assert total == D(april["total"])
        trend = rollups.daily_trend(session, tenant.msp_id, world.customer, "2025-04")
        assert [d for d, a in trend if a] == [date(2025, 4, 1)]


def test_another_msps_customer_is_not_found_and_bad_input_is_refused(
    world: World, runtime: Runtime, tenant: Tenant
) -> None:
    stranger = make_tenant(runtime, tenant.client, "other-msp")
    calls = [
        lambda s, m: rollups.daily_trend(s, m, world.customer, PERIOD),
        lambda s, m: rollups.breakdown(s, m, world.customer, PERIOD, "vendor"),
        lambda s, m: rollups.filter_options(s, m, world.customer, PERIOD),
        lambda s, m: rollups.top_resources(s, m, world.customer, PERIOD),
        lambda s, m: rollups.month_comparison(s, m, world.customer, PERIOD, date(2025, 3, 9)),
        lambda s, m: rollups.forecast(s, m, world.customer, PERIOD, date(2025, 3, 9)),
        lambda s, m: rollups.cost_rows(s, m, world.customer, PERIOD),
    ]
    with runtime.uow() as uow:
        for call in calls:
            with pytest.raises(NotFound):
                call(uow.session, stranger.msp_id)
        # The other customer of the same MSP sees none of this customer's usage.
        other = rollups.breakdown(uow.session, tenant.msp_id, world.other, PERIOD, "account")
        assert {k for k, _ in other} <= {OTHER_SUB, rollups.NO_ACCOUNT}
        session, msp = uow.session, tenant.msp_id
        for bad in (
            lambda: rollups.breakdown(session, msp, world.customer, PERIOD, "colour"),
            lambda: rollups.breakdown(session, msp, world.customer, PERIOD, "tag:"),
            lambda: rollups.daily_trend(
                session, msp, world.customer, PERIOD, CostFilter(date_from=date(2025, 4, 1))
            ),
            lambda: rollups.daily_trend(
                session,
                msp,
                world.customer,
                PERIOD,
                CostFilter(date_from=date(2025, 3, 9), date_to=date(2025, 3, 2)),
            ),
            lambda: rollups.daily_trend(session, msp, world.customer, "2025-13"),
        ):
            with pytest.raises(InvalidInput):
                bad()

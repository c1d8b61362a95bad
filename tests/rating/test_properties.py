"""Properties of rating: precedence is a total order independent of rule order, rating is
idempotent and matches an independent computation, rounding never creates or loses a
minor unit, tiered prices are graduated brackets."""

from __future__ import annotations

import functools
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Context, Decimal, localcontext
from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from billbyte.kit.money import allocate
from billbyte.pricing.rules import Adjustment, Rule, Tier, ordered, tiered_sell
from billbyte.rating import engine
from billbyte.rating.tasks import rate_all
from billbyte.runtime import Runtime
from billbyte.usage.canonical import MONEY, QUANTITY
from tests.conftest import Tenant
from tests.rating.factories import Scenario, cents, row

D = Decimal
# Plenty of digits: the test's own sums must be exact.
EXACT = Context(prec=200, rounding=ROUND_HALF_EVEN)

# Narrowest first, as documented in billbyte.pricing.rules.
NARROWEST_FIRST = (
    "sku_id",
    "service_name",
    "service_category",
    "region_id",
    "partner_account_id",
    "vendor",
    "charge_category",
)
SCOPE_VALUES = {
    "sku_id": ["SKU-A", "SKU-B"],
    "service_name": ["EC2", "S3"],
    "service_category": ["Compute", "Storage"],
    "region_id": ["eu-central-1", "us-east-1"],
    "partner_account_id": ["pa_1", "pa_2"],
    "vendor": ["aws", "azure"],
    "charge_category": ["Usage", "Credit"],
}


@st.composite
def rules(draw: st.DrawFn, max_size: int = 8) -> list[Rule]:
    count = draw(st.integers(min_value=1, max_value=max_size))
    out = []
    for index in range(count):
        scope = {
            name: draw(st.sampled_from(values))
            for name, values in SCOPE_VALUES.items()
            if draw(st.booleans())
        }
        start = draw(st.none() | st.dates(date(2025, 1, 1), date(2025, 12, 31)))
        end = draw(st.none() | st.integers(0, 60)) if start else None
        out.append(
            Rule(
                id=f"prl_{draw(st.integers(0, 10**6)):07d}_{index}",
                adjustment=draw(
                    st.sampled_from([Adjustment.MARKUP_PERCENT, Adjustment.DISCOUNT_PERCENT])
                ),
                value=D(draw(st.integers(0, 50))),
                customer_id=draw(st.sampled_from([None, None, "cus_1", "cus_2"])),
                plan_id="pp_1",
                scope=scope,
                effective_from=start,
                effective_to=None if start is None or end is None else start + timedelta(end),
            )
        )
    return out


def _beats(a: Rule, b: Rule) -> int:
    """Independent statement of the documented precedence: negative if ``a`` goes first."""
    if bool(a.customer_id) != bool(b.customer_id):
        return -1 if a.customer_id else 1
    fields_a = [name in a.scope for name in NARROWEST_FIRST]
    fields_b = [name in b.scope for name in NARROWEST_FIRST]
    if sum(fields_a) != sum(fields_b):
        return -1 if sum(fields_a) > sum(fields_b) else 1
    if fields_a != fields_b:  # the narrower field decides
        return -1 if fields_a > fields_b else 1
    start_a, start_b = a.effective_from or date.min, b.effective_from or date.min
    if start_a != start_b:
        return -1 if start_a > start_b else 1
    return -1 if a.id < b.id else (1 if a.id > b.id else 0)


@settings(max_examples=200, deadline=None)
@given(rules(), st.randoms(use_true_random=False))
def test_precedence_is_total_and_independent_of_rule_order(
    given_rules: list[Rule], random: object
) -> None:
    first = ordered(given_rules)
    shuffled = list(given_rules)
    random.shuffle(shuffled)  # type: ignore[attr-defined]
    assert [r.id for r in ordered(shuffled)] == [r.id for r in first]
    assert [r.id for r in ordered(list(reversed(given_rules)))] == [r.id for r in first]
    expected = sorted(given_rules, key=functools.cmp_to_key(_beats))
    assert [r.id for r in first] == [r.id for r in expected]


def _grain() -> pl.DataFrame:
    """Every combination of the scope values, for two customers and a few days."""
    rows = []
    days = [date(2025, 3, 1), date(2025, 3, 15), date(2025, 6, 30)]
    for index in range(64):
        pick = {name: values[(index >> i) % 2] for i, (name, values) in
                enumerate(SCOPE_VALUES.items())}  # fmt: skip
        rows.append(
            {
                "customer_id": ["cus_1", "cus_2", "cus_3"][index % 3],
                "plan_id": "pp_1",
                "currency": "USD",
                "sub_account_id": "1",
                "pricing_unit": "Hours",
                "billing_currency": "USD",
                "day": days[index % 3],
                "cost": D("10"),
                "list": D("12"),
                "quantity": D("2"),
                "usage_lines": 1,
                **pick,
            }
        )
    return pl.DataFrame(
        rows,
        schema_overrides={"cost": MONEY, "list": MONEY, "quantity": QUANTITY, "day": pl.Date},
    )


GRAIN = _grain()


@settings(max_examples=40, deadline=None)
@given(rules(max_size=6), st.randoms(use_true_random=False))
def test_engine_picks_the_first_matching_rule_whatever_the_order(
    given_rules: list[Rule], random: object
) -> None:
    shuffled = list(given_rules)
    random.shuffle(shuffled)  # type: ignore[attr-defined]
    a = engine.price(GRAIN, given_rules).select("rule_id", "sell")
    b = engine.price(GRAIN, shuffled).select("rule_id", "sell")
    assert a.equals(b)
    # The chosen rule is the first rule, in precedence order, whose scope matches.
    precedence = ordered(given_rules)
    for line, chosen in zip(GRAIN.iter_rows(named=True), a["rule_id"], strict=True):
        want = None
        for rule in precedence:
            owner = rule.customer_id == line["customer_id"] if rule.customer_id else True
            in_scope = all(line[name] == value for name, value in rule.scope.items())
            named = "charge_category" in rule.scope or line["charge_category"] != "Credit"
            started = rule.effective_from is None or line["day"] >= rule.effective_from
            ended = rule.effective_to is not None and line["day"] > rule.effective_to
            if owner and in_scope and named and started and not ended:
                want = rule.id
                break
        assert chosen == want


@st.composite
def amounts(draw: st.DrawFn) -> list[Decimal]:
    places = draw(st.integers(0, 24))
    magnitude = draw(st.sampled_from([10**3, 10**9, 10**15, 10**30]))
    values = draw(
        st.lists(st.integers(-magnitude, magnitude), min_size=0, max_size=40)
        | st.lists(st.sampled_from([-15, -5, 5, 15, 25, 35]), min_size=1, max_size=40).map(
            lambda xs: [x * 10 ** max(places - 3, 0) for x in xs]
        )
    )
    return [D(v).scaleb(-places) for v in values]


@settings(max_examples=400, deadline=None)
@given(amounts(), st.sampled_from(["JPY", "USD", "KWD"]), st.booleans())
# Sums beyond the default 28 significant digits, and amounts too large to quantize in them.
@example([D("1000000.005000000000000000000001")], "USD", False)
@example([D("0.005000000000000000000000001"), D("1000000")], "USD", True)
@example([D(10) ** 25], "KWD", False)
@example([D("0.005")] * 3 + [D("-0.005")], "USD", True)
def test_allocate_never_creates_or_loses_a_minor_unit(
    values: list[Decimal], currency: str, with_keys: bool
) -> None:
    unit = {"JPY": D(1), "USD": D("0.01"), "KWD": D("0.001")}[currency]
    keys = [f"k{i:04d}" for i in range(len(values))] if with_keys else None
    allocated, total = allocate(list(values), currency, keys)
    with localcontext(EXACT):
        exact_total = sum(values, D(0))
        want = exact_total.quantize(unit, rounding=ROUND_HALF_EVEN)
        assert total == want
        assert sum(allocated, D(0)) == want
        assert len(allocated) == len(values)
        for exact, rounded in zip(values, allocated, strict=True):
            assert rounded == rounded.quantize(unit)  # a whole number of minor units
            assert abs(rounded - exact) < unit
    # Deterministic: the same input allocates the same way.
    assert allocate(list(values), currency, keys) == (allocated, total)


@st.composite
def tier_lists(draw: st.DrawFn) -> list[Tier]:
    bounds = sorted(set(draw(st.lists(st.integers(1, 10_000), min_size=0, max_size=4))))
    percents = draw(
        st.lists(st.integers(-100, 300), min_size=len(bounds) + 1, max_size=len(bounds) + 1)
    )
    uppers: list[Decimal | None] = [D(b) for b in bounds]
    uppers.append(None)
    return [Tier(up_to=u, percent=D(p)) for u, p in zip(uppers, percents, strict=True)]


def _brackets(total: Decimal, tiers: list[Tier]) -> Decimal:
    """Tax-bracket style: the slice of the total inside each bracket at its own rate."""
    if total <= 0:
        return total + total * tiers[0].percent / 100
    sell = D(0)
    floor = D(0)
    for tier in tiers:
        ceiling = total if tier.up_to is None else tier.up_to
        inside = max(D(0), min(total, ceiling) - floor)
        sell += inside + inside * tier.percent / 100
        floor = ceiling
    return sell


@settings(max_examples=300, deadline=None)
@given(
    tier_lists(),
    st.integers(-(10**8), 10**10).map(lambda n: D(n).scaleb(-2)),
)
def test_tiered_sell_is_graduated(tiers: list[Tier], total: Decimal) -> None:
    assert tiered_sell(total, tiers) == _brackets(total, tiers)


# --- on a database: rating generated usage ---------------------------------------------

USAGE = st.lists(
    st.tuples(
        st.integers(-(10**9), 10**11).map(lambda n: D(n).scaleb(-8)),  # cost
        st.sampled_from(["Usage", "Usage", "Purchase", "Credit", "Tax"]),
        st.sampled_from(["EC2", "S3", "Lambda"]),
        st.integers(1, 31),  # day
        st.sampled_from(["111111111111", "222222222222", "999999999999"]),
    ),
    min_size=1,
    max_size=12,
)


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(usage=USAGE)
def test_rerating_is_idempotent_and_matches_an_independent_computation(
    tenant: Tenant, runtime: Runtime, tmp_path_factory: object, usage: list[tuple]
) -> None:
    tmp = Path(tmp_path_factory.mktemp("usage"))  # type: ignore[attr-defined]
    s = Scenario(tenant, runtime, tmp)
    if not s.accounts:
        existing = tenant.get("/v1/partner-accounts").json()["data"]
        if existing:
            s.accounts["aws"] = existing[0]["id"]
            customers = {
                c["external_id"]: c["id"] for c in tenant.get("/v1/customers").json()["data"]
            }
        else:
            s.account("aws", discount="7")  # list = cost / 0.93: more than 18 places
            customers = {"A": s.customer("A"), "B": s.customer("B")}
            s.link(customers["A"], "111111111111")
            s.link(customers["B"], "222222222222")
            s.plan([{"vendor": "aws", "adjustment": "markup_percent", "value": "15"}])
            tenant.post(
                f"/v1/customers/{customers['B']}/price-rules",
                json={"service_name": "S3", "adjustment": "discount_percent", "value": "5"},
            )
    s.upload(
        row(format(cost, "f"), charge=charge, service=service, day=day, sub=sub, list_cost="")
        for cost, charge, service, day, sub in usage
    )
    s.drain()
    expected = {"A": D(0), "B": D(0)}
    with localcontext(EXACT):
        for cost, charge, service, _, sub in usage:
            owner = {"111111111111": "A", "222222222222": "B"}.get(sub)
            if owner is None:
                continue  # unassigned
            if charge in ("Credit", "Tax"):
                expected[owner] += cost
            elif owner == "B" and service == "S3":
                expected[owner] += cost * D("0.95")
            else:
                expected[owner] += cost * D("1.15")
    before = {}
    for name, customer in customers.items():
        body = s.charges(customer)
        assert body["rating"]["status"] in ("ok", "not_rated")
        assert D(body["total_exact"]) == expected[name]
        assert D(body["total"]) == cents(expected[name])
        before[name] = s.lines(customer)
    _, cursor = s.feed()
    rate_all(runtime, tenant.msp_id)
    rate_all(runtime, tenant.msp_id, "2025-03")
    assert s.feed(after=cursor)[0] == []
    assert {name: s.lines(c) for name, c in customers.items()} == before

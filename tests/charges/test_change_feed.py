"""The change feed of open charge lines: ordered, resumable, complete, replayable."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from billbyte.rating.tasks import rate_all
from billbyte.runtime import Runtime
from tests.conftest import Tenant
from tests.rating.factories import Scenario, cents, row

D = Decimal
EC2 = "Amazon Elastic Compute Cloud"
S3 = "Amazon Simple Storage Service"


def _first_month(s: Scenario) -> tuple[str, str]:
    # A 12 % partner discount: list prices are estimated as cost / 0.88, which does not
    # terminate (lines then carry more places than PostgreSQL's NUMERIC(38, 18) keeps).
    s.account("aws", discount="12")
    a, b = s.customer("A"), s.customer("B")
    s.link(a, "111111111111")
    s.link(b, "222222222222")
    s.plan([{"vendor": "aws", "adjustment": "markup_percent", "value": "10"}])
    s.upload(
        [
            row("10", sub="111111111111", service=EC2, list_cost=""),
            row("20", sub="111111111111", service=S3),
            row("30", sub="111111111111", service="Lambda"),
            row("-1", sub="111111111111", service=EC2, charge="Credit"),
            row("40", sub="222222222222", service=EC2, list_cost=""),
            row("50", sub="222222222222", service=S3),
        ]
    )
    s.drain()
    return a, b


def _replay(changes: list[dict[str, Any]]) -> dict[tuple[str, str, str], dict[str, Any]]:
    lines: dict[tuple[str, str, str], dict[str, Any]] = {}
    for change in changes:
        key = (change["customer_id"], change["period"], change["line_key"])
        if change["change"] == "deleted":
            assert key in lines, change  # only what was created can be deleted
            assert change["line"] is None and change["previous"] == lines.pop(key)
        elif change["change"] == "created":
            assert key not in lines, change
            assert change["previous"] is None
            lines[key] = change["line"]
        else:
            assert change["change"] == "updated"
            assert change["previous"] == lines[key], change
            assert change["line"] != change["previous"]
            lines[key] = change["line"]
    return lines


def _assert_replay_matches_charges(
    s: Scenario, changes: list[dict[str, Any]], customers: list[str]
) -> None:
    replayed = _replay(changes)
    current = {(c, "2025-03", li["line_key"]): li for c in customers for li in s.lines(c)}
    assert set(replayed) == set(current)
    for key, line in current.items():
        fed = replayed[key]
        assert D(fed["sell_local"]) == D(line["amount_exact"]), key
        assert cents(D(fed["cost"])) == D(line["cost"])
        assert (fed["service_name"], fed["charge_category"], fed["currency"]) == (
            line["service_name"],
            line["charge_category"],
            line["currency"],
        )


def test_paging_returns_each_change_once_in_order(
    tenant: Tenant, runtime: Runtime, tmp_path: Path
) -> None:
    s = Scenario(tenant, runtime, tmp_path)
    a, b = _first_month(s)
    everything, end = s.feed(limit=500)
    assert len(everything) == 6 and {c["change"] for c in everything} == {"created"}
    seqs = [c["seq"] for c in everything]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert all(c["cursor"] == str(c["seq"]) for c in everything)
    assert end == everything[-1]["cursor"]
    for limit in (1, 2, 4):
        paged, cursor = s.feed(limit=limit)
        assert paged == everything and cursor == end

    # Resuming mid-way, while new changes arrive, misses nothing and repeats nothing.
    first = tenant.get("/v1/charges/changes", params={"limit": 4}).json()
    assert first["has_more"] is True and len(first["data"]) == 4
    s.upload(
        [
            row("10", sub="111111111111", service=EC2, list_cost=""),
            row("25", sub="111111111111", service=S3),  # updated
            # Lambda gone: deleted
            row("-1", sub="111111111111", service=EC2, charge="Credit"),
            row("5", sub="111111111111", service="SQS"),  # created
            row("40", sub="222222222222", service=EC2, list_cost=""),
            row("50", sub="222222222222", service=S3),
        ]
    )
    s.drain()
    rest, cursor = s.feed(after=first["next_cursor"], limit=3)
    combined = first["data"] + rest
    assert [c["seq"] for c in combined] == sorted({c["seq"] for c in combined})
    assert combined[:6] == everything
    new = combined[6:]
    by_service = {
        (c["line"] or c["previous"])["service_name"]: (
            c["change"],
            c["previous"] and D(c["previous"]["sell_local"]),
            c["line"] and D(c["line"]["sell_local"]),
        )
        for c in new
    }
    assert by_service == {
        S3: ("updated", D("22"), D("27.5")),
        "Lambda": ("deleted", D("33"), None),
        "SQS": ("created", None, D("5.5")),
    }
    assert {c["customer_id"] for c in new} == {a}

    # At the end: an empty page that hands the same cursor back, so polling can go on.
    tail = tenant.get("/v1/charges/changes", params={"after": cursor}).json()
    assert tail == {"object": "list", "data": [], "next_cursor": cursor, "has_more": False}
    _assert_replay_matches_charges(s, combined, [a, b])


def test_rerating_without_change_writes_nothing_and_replay_rebuilds_lines(
    tenant: Tenant, runtime: Runtime, tmp_path: Path
) -> None:
    s = Scenario(tenant, runtime, tmp_path)
    a, b = _first_month(s)
    # Several kinds of change in a row, each through the feed.
    plan = tenant.get("/v1/price-plans").json()["data"][0]["id"]
    tenant.post(
        f"/v1/price-plans/{plan}/rules",
        json={"service_name": S3, "adjustment": "tiered_percent",
              "tiers": [{"up_to": "7", "percent": "33.3"}, {"percent": "7"}]},
    )  # fmt: skip
    s.drain()
    tenant.post(f"/v1/customers/{b}/price-rules", json={"adjustment": "fixed_fee",
                "value": "9.99", "currency": "USD"})  # fmt: skip
    s.drain()
    # Replaces the month's file.
    s.upload([row("12.345678", sub="111111111111", service=EC2, list_cost="")])
    s.drain()
    changes, cursor = s.feed(limit=3)
    assert {c["change"] for c in changes} == {"created", "updated", "deleted"}
    _assert_replay_matches_charges(s, changes, [a, b])

    before = {c: s.lines(c) for c in (a, b)}
    for _ in range(2):
        rate_all(runtime, tenant.msp_id)
    again, _ = s.feed(after=cursor)
    assert again == []
    assert {c: s.lines(c) for c in (a, b)} == before


def test_bad_cursor_and_isolation(
    tenant: Tenant, other_tenant: Tenant, runtime: Runtime, tmp_path: Path
) -> None:
    s = Scenario(tenant, runtime, tmp_path)
    _first_month(s)
    response = tenant.get("/v1/charges/changes", params={"after": "not-a-cursor"})
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["after"]
    for limit in (0, 100000):
        assert tenant.get("/v1/charges/changes", params={"limit": limit}).status_code == 422
    assert other_tenant.get("/v1/charges/changes").json()["data"] == []

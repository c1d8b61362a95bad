"""The acceptance oracle: FOCUS sample, +15 % on cost for AWS, list - 5 % for Microsoft,
converted to EUR at given daily rates — charges equal a hand-written Decimal computation
over the raw file, to the cent.

The oracle below reads the CSV with the standard library and applies the documented rules
itself: a rule prices Usage/Purchase lines; Credit, Tax and Adjustment lines pass through
at cost; the period is the month of BillingPeriodStart; the rate is the USD→EUR rate of the
charge day. Oracle rows (Oracle Cloud) are left out: they belong to no partner account here.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

import pytest

from billbyte.jobs.service import run_pending
from billbyte.rating import tasks as _rating  # noqa: F401  (registers the job handler)
from tests.conftest import Tenant

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "vendor" / "focus" / "focus_sample.csv"
CENT = Decimal("0.01")


def rate_of(day: int) -> Decimal:
    return Decimal("0.9000") + Decimal(day) / Decimal(10000)


def _rows() -> list[dict[str, str]]:
    with SAMPLE.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def _split(tmp_path: Path) -> dict[str, Path]:
    with SAMPLE.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        provider = header.index("ProviderName")
        files: dict[str, list[list[str]]] = defaultdict(list)
        for record in reader:
            files[record[provider]].append(record)
    paths = {}
    for name in ("AWS", "Microsoft"):
        path = tmp_path / f"{name}.csv"
        with path.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(header)
            writer.writerows(files[name])
        paths[name] = path
    return paths


def _expected(customer_of: dict[str, str]) -> dict[tuple[str, str], Decimal]:
    """(customer, period) → exact EUR amount, by the documented rules, from the raw file."""
    totals: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for row in _rows():
        if row["ProviderName"] not in ("AWS", "Microsoft"):
            continue
        if row["ChargeCategory"] in ("Credit", "Tax", "Adjustment"):
            amount = Decimal(row["BilledCost"])
        elif row["ProviderName"] == "AWS":
            amount = Decimal(row["BilledCost"]) * Decimal("1.15")
        else:
            amount = Decimal(row["ListCost"]) * Decimal("0.95")
        day = int(row["ChargePeriodStart"][8:10])
        period = row["BillingPeriodStart"][:7]
        customer = customer_of[row["SubAccountId"]]
        totals[(customer, period)] += amount * rate_of(day)
    return totals


@pytest.fixture
def priced(tenant: Tenant, tmp_path: Path) -> tuple[Tenant, dict[str, str], dict[str, str]]:
    accounts = {}
    for vendor, name in (("aws", "AWS"), ("azure", "Microsoft")):
        response = tenant.post(
            "/v1/partner-accounts",
            json={"vendor": vendor, "display_name": name, "partner_discount_percent": "12"},
        )
        accounts[name] = response.json()["id"]
    plan = tenant.post(
        "/v1/price-plans",
        json={
            "name": "Standard",
            "is_default": True,
            "rules": [
                {"vendor": "aws", "adjustment": "markup_percent", "value": "15"},
                {
                    "vendor": "azure",
                    "basis": "list",
                    "adjustment": "discount_percent",
                    "value": "5",
                },
            ],
        },
    )
    assert plan.status_code == 201, plan.text
    rates = [
        {"base": "USD", "quote": "EUR", "date": f"2024-09-{d:02d}", "rate": str(rate_of(d))}
        for d in range(1, 31)
    ]
    rates += [
        {"base": "USD", "quote": "EUR", "date": f"2024-10-{d:02d}", "rate": str(rate_of(d))}
        for d in range(1, 32)
    ]
    assert (
        tenant.client.put("/v1/fx-rates", json={"rates": rates}, headers=tenant.headers).status_code
        == 200
    )
    rows = _rows()
    subs: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        if row["ProviderName"] in accounts and row["SubAccountId"] not in subs[row["ProviderName"]]:
            subs[row["ProviderName"]].append(row["SubAccountId"])
    customer_of: dict[str, str] = {}
    customers = {}
    for index in range(3):
        body = {"external_id": f"C{index}", "name": f"Customer {index}", "currency": "EUR"}
        customers[f"C{index}"] = tenant.post("/v1/customers", json=body).json()["id"]
    for provider, ids in subs.items():
        for position, sub in enumerate(sorted(ids)):
            external = f"C{position % 3}"
            link = tenant.post(
                f"/v1/customers/{customers[external]}/vendor-accounts",
                json={"partner_account_id": accounts[provider], "vendor_identifier": sub},
            )
            assert link.status_code == 201, link.text
            customer_of[sub] = customers[external]
    for name, path in _split(tmp_path).items():
        with path.open("rb") as handle:
            imported = tenant.post(
                "/v1/usage/imports",
                data={"partner_account_id": accounts[name]},
                files={"file": (path.name, handle)},
            )
        assert imported.status_code == 201, imported.text
    return tenant, customers, customer_of


def test_charges_equal_the_oracle_to_the_cent(priced, runtime) -> None:
    tenant, customers, customer_of = priced
    assert run_pending(runtime) >= 1
    expected = _expected(customer_of)
    checked = 0
    for customer_id in customers.values():
        for period in ("2024-09", "2024-10"):
            charges = tenant.get(f"/v1/customers/{customer_id}/charges", params={"period": period})
            assert charges.status_code == 200, charges.text
            body = charges.json()
            assert body["rating"]["status"] in ("ok", "not_rated"), body["rating"]
            want = expected.get((customer_id, period), Decimal(0)).quantize(
                CENT, rounding=ROUND_HALF_EVEN
            )
            assert Decimal(body["total"]) == want, (customer_id, period)
            lines = [line for group in body["groups"] for line in group["lines"]]
            assert sum((Decimal(li["amount"]) for li in lines), Decimal(0)) == want
            checked += bool(lines)
    assert checked == 3  # three customers in September (October holds only an Oracle line)


def test_margin_report_and_change_feed(priced, runtime) -> None:
    tenant, customers, _ = priced
    run_pending(runtime)
    margin = tenant.get(
        "/v1/reports/margin", params={"period": "2024-09", "group_by": "vendor"}
    ).json()
    vendors = {row["key"]: row for row in margin["rows"]}
    assert set(vendors) == {"aws", "azure"}
    for row in vendors.values():
        assert Decimal(row["margin"]) == Decimal(row["amount"]) - Decimal(row["cost"])
    assert Decimal(vendors["aws"]["margin"]) > 0
    changes, cursor = [], None
    while True:
        page = tenant.get(
            "/v1/charges/changes", params={"limit": 200, **({"after": cursor} if cursor else {})}
        ).json()
        changes += page["data"]
        cursor = page["next_cursor"]
        if not page["has_more"]:
            break
    created = [c for c in changes if c["change"] == "created"]
    assert created and all(c["customer_id"] in customers.values() for c in created)
    seqs = [c["seq"] for c in changes]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    # Every open line appears in the feed: replaying it rebuilds the charges.
    lines = {}
    for change in changes:
        if change["change"] == "deleted":
            lines.pop((change["customer_id"], change["line_key"]), None)
        else:
            lines[(change["customer_id"], change["line_key"])] = change["line"]
    for customer_id in customers.values():
        body = tenant.get(
            f"/v1/customers/{customer_id}/charges", params={"period": "2024-09"}
        ).json()
        exact = sum(
            (Decimal(li["amount_exact"]) for g in body["groups"] for li in g["lines"]), Decimal(0)
        )
        replayed = sum(
            (Decimal(v["sell_local"]) for (c, _), v in lines.items() if c == customer_id),
            Decimal(0),
        )
        assert replayed == exact
    # Re-rating without any change writes no new change.
    from billbyte.rating.tasks import rate_all

    rate_all(runtime, tenant.msp_id)
    again = tenant.get("/v1/charges/changes", params={"after": cursor}).json()
    assert again["data"] == []

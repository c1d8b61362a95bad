"""A customer with two months of rated AWS usage (services, regions, accounts and tags), a
neighbour under the same MSP, and a portal user: seeded through the usage import and the
rating job, as tests/rating does.

Every amount is written here so that the tests can add up what they expect by hand: the
plan marks AWS up by 10 %, so each sold amount is the cost times 1.1.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from billbyte.runtime import Runtime
from tests.conftest import Tenant
from tests.rating.factories import HEADER, Scenario, row
from tests.web.people import Person, add_portal_user

PERIOD = "2026-11"
PREVIOUS = "2026-10"
EC2 = "Amazon Elastic Compute Cloud"
S3 = "Amazon Simple Storage Service"
PROD, TEST = "111111111111", "222222222222"
NEIGHBOUR_ACCOUNT = "333333333333"
MARKUP = Decimal("1.1")


@dataclass(frozen=True)
class Usage:
    """One usage row as uploaded (the vendor's cost)."""

    period: str
    day: int
    service: str
    region: str
    account: str
    cost: Decimal
    tags: dict[str, str]
    resource: str


USAGE = [
    Usage(PERIOD, 1, EC2, "eu-central-1", PROD, Decimal("10.00"), {"env": "prod"}, "vm-web"),
    Usage(PERIOD, 2, EC2, "us-east-1", PROD, Decimal("5.50"), {"env": "dev"}, "vm-dev"),
    Usage(PERIOD, 3, S3, "eu-central-1", TEST, Decimal("2.20"), {}, "bucket-logs"),
    Usage(PERIOD, 3, EC2, "eu-central-1", TEST, Decimal("1.30"), {"env": "prod"}, "vm-batch"),
    Usage(PREVIOUS, 1, EC2, "eu-central-1", PROD, Decimal("4.00"), {"env": "prod"}, "vm-web"),
]
NEIGHBOUR = Usage(PERIOD, 1, EC2, "eu-central-1", NEIGHBOUR_ACCOUNT, Decimal("70"), {}, "vm-n")


@dataclass(frozen=True)
class Seeded:
    scenario: Scenario
    customer_id: str
    neighbour_id: str
    person: Person
    neighbour_person: Person


def _write(path: Path, usage: list[Usage]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=[*HEADER, "Tags"])
        writer.writeheader()
        for item in usage:
            fields = row(
                format(item.cost, "f"),
                day=item.day,
                period=item.period,
                sub=item.account,
                service=item.service,
                region=item.region,
                resource=item.resource,
            )
            writer.writerow({**fields, "Tags": json.dumps(item.tags) if item.tags else ""})
    return path


def upload(s: Scenario, tmp_path: Path, name: str, usage: list[Usage]) -> None:
    path = _write(tmp_path / name, usage)
    with path.open("rb") as handle:
        response = s.tenant.post(
            "/v1/usage/imports",
            data={"partner_account_id": s.accounts["aws"]},
            files={"file": (path.name, handle)},
        )
    assert response.status_code == 201, response.text


def seed(
    tenant: Tenant,
    runtime: Runtime,
    tmp_path: Path,
    *,
    currency: str = "USD",
    locale: str = "en",
    credit_limit: str | None = "100",
    usage: list[Usage] | None = None,
) -> Seeded:
    s = Scenario(tenant, runtime, tmp_path)
    s.account("aws")
    extra = {"locale": locale}
    if credit_limit is not None:
        extra["credit_limit"] = credit_limit
    customer = s.customer("ACME", currency=currency, **extra)
    neighbour = s.customer("NEXT", currency=currency)
    s.link(customer, PROD)
    s.link(customer, TEST)
    s.link(neighbour, NEIGHBOUR_ACCOUNT)
    s.plan([{"vendor": "aws", "adjustment": "markup_percent", "value": "10"}])
    if currency != "USD":
        days = [f"{p}-{d:02d}" for p in (PREVIOUS, PERIOD) for d in range(1, 31)]
        s.rates(*[("USD", currency, day, "2") for day in days])
    upload(s, tmp_path, "usage.csv", [*(USAGE if usage is None else usage), NEIGHBOUR])
    s.drain()
    person = add_portal_user(runtime, tenant.msp_id, customer)
    neighbour_person = add_portal_user(runtime, tenant.msp_id, neighbour)
    return Seeded(s, customer, neighbour, person, neighbour_person)


def month_of_usage(period: str, days: int, scale: int) -> list[Usage]:
    """A fuller month for the browser and the screenshots: every day, three services in two
    regions and both accounts, tagged by team; amounts in whole cents times ``scale``/10."""
    services = [
        (EC2, "eu-central-1", PROD, {"team": "web", "env": "prod"}, Decimal("3.20")),
        (EC2, "us-east-1", TEST, {"team": "data", "env": "dev"}, Decimal("1.10")),
        (S3, "eu-central-1", PROD, {"team": "web", "env": "prod"}, Decimal("0.40")),
        (
            "Amazon Relational Database Service",
            "eu-central-1",
            PROD,
            {"team": "data"},
            Decimal("2.30"),
        ),
        ("AWS Lambda", "us-east-1", TEST, {}, Decimal("0.20")),
    ]
    found = []
    for day in range(1, days + 1):
        for index, (service, region, account, tags, base) in enumerate(services):
            growth = Decimal(day % 7 + index) / 10 * scale / 10
            found.append(
                Usage(
                    period,
                    day,
                    service,
                    region,
                    account,
                    base * scale / 10 + growth,
                    tags,
                    f"{service.split()[-1].lower()}-{region}-{index}",
                )
            )
    return found


def sold(usage: list[Usage]) -> Decimal:
    """What the customer pays for these rows: cost x 1.1, to the cent (the rows are chosen
    so that no half cent arises)."""
    return sum((u.cost * MARKUP for u in usage), Decimal(0)).quantize(Decimal("0.01"))

"""ETag / If-None-Match on GET /v1/customers/{id}/charges: a polling BSS gets 304 while its
copy is current, the new body (and a new ETag) once charges change, and never anything of
another MSP's customer."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from billbyte.charges import ledger
from billbyte.rating.tasks import rate_all
from billbyte.runtime import Runtime
from tests.conftest import Tenant
from tests.rating.factories import PERIOD, Scenario, row

EC2 = "Amazon Elastic Compute Cloud"
S3 = "Amazon Simple Storage Service"


def _rated(s: Scenario) -> tuple[str, str]:
    s.account("aws")
    a, b = s.customer("A"), s.customer("B")
    s.link(a, "111111111111")
    s.link(b, "222222222222")
    s.plan([{"vendor": "aws", "adjustment": "markup_percent", "value": "10"}])
    s.upload(
        [
            row("10", sub="111111111111", service=EC2),
            row("20", sub="111111111111", service=S3),
            row("40", sub="222222222222", service=EC2),
        ]
    )
    s.drain()
    return a, b


def _charges(tenant: Tenant, customer: str, etag: str | None = None, **params: str) -> Any:
    headers = {"If-None-Match": etag} if etag else {}
    return tenant.get(
        f"/v1/customers/{customer}/charges",
        params={"period": PERIOD, **params},
        headers=headers,
    )


def test_304_while_current_and_a_new_body_and_etag_after_re_rating(
    tenant: Tenant, runtime: Runtime, tmp_path: Path
) -> None:
    s = Scenario(tenant, runtime, tmp_path)
    a, _ = _rated(s)
    first = _charges(tenant, a)
    assert first.status_code == 200
    etag = first.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"') and not etag.startswith("W/")
    assert Decimal(first.json()["total"]) == Decimal("33.00")  # (10 + 20) × 1.10

    again = _charges(tenant, a, etag)
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    # Weak comparison (RFC 9110 for If-None-Match), a list, and "*" all match.
    assert _charges(tenant, a, f"W/{etag}").status_code == 304
    assert _charges(tenant, a, f'"other", {etag}').status_code == 304
    assert _charges(tenant, a, "*").status_code == 304
    assert _charges(tenant, a, '"something-else"').status_code == 200

    # New usage: S3 20 → 25, re-rated.
    s.upload(
        [
            row("10", sub="111111111111", service=EC2),
            row("25", sub="111111111111", service=S3),
            row("40", sub="222222222222", service=EC2),
        ]
    )
    s.drain()
    changed = _charges(tenant, a, etag)
    assert changed.status_code == 200
    assert Decimal(changed.json()["total"]) == Decimal("38.50")  # (10 + 25) × 1.10
    assert changed.headers["etag"] != etag
    assert _charges(tenant, a, changed.headers["etag"]).status_code == 304


def test_a_line_written_outside_rating_changes_the_etag(
    tenant: Tenant, runtime: Runtime, tmp_path: Path
) -> None:
    """The lines' part of the ETag is their last change-feed entry, not the rating state:
    a ledger write of another feature (a late-data adjustment, say) must show."""
    s = Scenario(tenant, runtime, tmp_path)
    a, _ = _rated(s)
    before = _charges(tenant, a)
    existing = before.json()["groups"][0]["lines"][0]
    with runtime.uow() as uow:
        [charge] = [
            line
            for line in ledger.lines_by_month(uow.session, a, [PERIOD])[PERIOD]
            if line.line_key == existing["line_key"]
        ]
        ledger.add(uow.session, tenant.msp_id, a, PERIOD, replace(charge, line_key="0" * 32))
        uow.commit()
    after = _charges(tenant, a, before.headers["etag"])
    assert after.status_code == 200
    assert after.headers["etag"] != before.headers["etag"]
    keys = {line["line_key"] for group in after.json()["groups"] for line in group["lines"]}
    assert "0" * 32 in keys


def test_etag_differs_per_customer_and_period(
    tenant: Tenant, runtime: Runtime, tmp_path: Path
) -> None:
    s = Scenario(tenant, runtime, tmp_path)
    a, b = _rated(s)
    etag_a = _charges(tenant, a).headers["etag"]
    etag_b = _charges(tenant, b).headers["etag"]
    other_month = _charges(tenant, a, period="2025-04")
    assert other_month.status_code == 200 and other_month.json()["groups"] == []
    assert len({etag_a, etag_b, other_month.headers["etag"]}) == 3
    # One customer's ETag is no good for another's charges, nor for another month.
    assert _charges(tenant, b, etag_a).status_code == 200
    assert _charges(tenant, a, etag_a, period="2025-04").status_code == 200


def test_another_msp_gets_404_whatever_it_sends(
    tenant: Tenant, other_tenant: Tenant, runtime: Runtime, tmp_path: Path
) -> None:
    s = Scenario(tenant, runtime, tmp_path)
    a, _ = _rated(s)
    etag = _charges(tenant, a).headers["etag"]
    for sent in (etag, "*", None):
        response = _charges(other_tenant, a, sent)
        assert response.status_code == 404, response.text
        assert "etag" not in response.headers
        assert response.json()["code"] == "customer_not_found"
    # And no key at all is 401, not 304.
    anonymous = tenant.client.get(
        f"/v1/customers/{a}/charges", params={"period": PERIOD}, headers={"If-None-Match": "*"}
    )
    assert anonymous.status_code == 401


def test_rating_the_same_usage_again_keeps_lines_but_not_rated_at(
    tenant: Tenant, runtime: Runtime, tmp_path: Path
) -> None:
    """The body shows when the period was last rated, so its ETag follows that too."""
    s = Scenario(tenant, runtime, tmp_path)
    a, _ = _rated(s)
    first = _charges(tenant, a)
    rate_all(runtime, tenant.msp_id, PERIOD)
    second = _charges(tenant, a, first.headers["etag"])
    assert second.status_code == 200
    assert second.json()["groups"] == first.json()["groups"]
    assert second.json()["rating"]["rated_at"] != first.json()["rating"]["rated_at"]
    assert second.headers["etag"] != first.headers["etag"]

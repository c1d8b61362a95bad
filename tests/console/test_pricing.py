"""The console's pricing pages: plans and rules through the API's service, with a preview
of a change (the API's plan preview before and after, nothing saved until Save)."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from billbyte.audit.models import AuditEvent
from billbyte.pricing.models import PriceRule
from billbyte.runtime import Runtime
from tests.conftest import Tenant
from tests.console.admin_helpers import post, staff_client
from tests.rating.factories import PERIOD, Scenario, row

D = Decimal


def _rules(runtime: Runtime) -> int:
    with runtime.uow(read_only=True) as uow:
        return uow.session.scalar(select(func.count()).select_from(PriceRule)) or 0


def _plan(tenant: Tenant, name: str = "Standard", rules: list[dict[str, str]] | None = None) -> str:
    response = tenant.post("/v1/price-plans", json={"name": name, "rules": rules or []})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_the_list_shows_the_plans_the_api_lists(runtime: Runtime, tenant: Tenant) -> None:
    _plan(tenant, "Standard", [{"adjustment": "markup_percent", "value": "12.5"}])
    _plan(tenant, "Premium")
    api = tenant.get("/v1/price-plans").json()["data"]
    page = staff_client(runtime, tenant.msp_id, "helpdesk").get("/console/pricing")
    assert page.status_code == 200
    for plan in api:
        assert f'href="/console/pricing/plans/{plan["id"]}">{plan["name"]}<' in page.text
    # help desk reads: no creation form
    assert 'action="/console/pricing/plans"' not in page.text


def test_an_admin_creates_a_plan_and_adds_a_rule(runtime: Runtime, tenant: Tenant) -> None:
    admin = staff_client(runtime, tenant.msp_id)
    created = post(admin, "/console/pricing/plans", {"name": "Gold", "description": "d"})
    assert created.status_code == 303
    plan_id = created.headers["location"].split("/")[-1].split("?")[0]
    saved = post(
        admin,
        f"/console/pricing/plans/{plan_id}/rules",
        {
            "intent": "save",
            "name": "AWS +7",
            "adjustment": "markup_percent",
            "value": "7",
            "vendor": "aws",
            "basis": "cost",
        },
    )
    assert saved.status_code == 303, saved.text
    rules = tenant.get(f"/v1/price-plans/{plan_id}").json()["rules"]
    assert [(r["name"], r["vendor"], r["adjustment"], r["value"]) for r in rules] == [
        ("AWS +7", "aws", "markup_percent", "7")
    ]
    page = admin.get(f"/console/pricing/plans/{plan_id}").text
    assert "AWS +7" in page and "markup_percent" in page
    with runtime.uow(read_only=True) as uow:
        actions = set(uow.session.scalars(select(AuditEvent.action)))
    assert {"price_plan.created", "price_rule.created"} <= actions


def test_editing_and_deleting_a_rule_go_through_the_service(
    runtime: Runtime, tenant: Tenant
) -> None:
    plan_id = _plan(tenant, rules=[{"adjustment": "markup_percent", "value": "5"}])
    rule_id = tenant.get(f"/v1/price-plans/{plan_id}").json()["rules"][0]["id"]
    billing = staff_client(runtime, tenant.msp_id, "billing")
    assert 'value="5"' in billing.get(f"/console/pricing/rules/{rule_id}").text
    edited = post(
        billing,
        f"/console/pricing/rules/{rule_id}",
        {"intent": "save", "adjustment": "discount_percent", "value": "3"},
    )
    assert edited.status_code == 303
    rule = tenant.get(f"/v1/price-plans/{plan_id}").json()["rules"][0]
    assert (rule["adjustment"], rule["value"]) == ("discount_percent", "3")
    assert billing.get(f"/console/pricing/rules/{rule_id}/delete").status_code == 200
    assert post(billing, f"/console/pricing/rules/{rule_id}/delete").status_code == 303
    assert tenant.get(f"/v1/price-plans/{plan_id}").json()["rules"] == []


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"adjustment": "markup_percent"}, "needs a value"),
        ({"adjustment": "discount_percent", "value": "150"}, "cannot exceed 100"),
        ({"adjustment": "fixed_fee", "value": "10"}, "needs a value and a currency"),
        ({"adjustment": "markup_percent", "value": "1e400"}, "value"),
        ({"adjustment": "markup_percent", "value": "5", "effective_from": "2026-13-01"}, "date"),
        ({"adjustment": "tiered_percent", "tiers": "1000 10"}, "tiers line 1"),
        ({"adjustment": "nonsense", "value": "1"}, "adjustment"),
    ],
)
def test_a_rule_the_api_refuses_is_a_422_page_and_nothing_is_written(
    runtime: Runtime, tenant: Tenant, fields: dict[str, str], message: str
) -> None:
    plan_id = _plan(tenant)
    admin = staff_client(runtime, tenant.msp_id)
    before = _rules(runtime)
    for intent in ("save", "preview"):
        response = post(
            admin, f"/console/pricing/plans/{plan_id}/rules", {"intent": intent, **fields}
        )
        assert response.status_code == 422, response.text
        assert message in response.text
        assert 'role="alert"' in response.text
    assert _rules(runtime) == before


def test_a_bad_preview_period_is_a_422_page(runtime: Runtime, tenant: Tenant) -> None:
    plan_id = _plan(tenant)
    admin = staff_client(runtime, tenant.msp_id)
    response = post(
        admin,
        f"/console/pricing/plans/{plan_id}/rules",
        {"intent": "preview", "adjustment": "markup_percent", "value": "5", "period": "2026-13"},
    )
    assert response.status_code == 422
    assert _rules(runtime) == 0


def test_the_preview_is_the_api_preview_before_and_after_and_saves_nothing(
    runtime: Runtime, tenant: Tenant, tmp_path: Path
) -> None:
    s = Scenario(tenant, runtime, tmp_path)
    s.account("aws")
    usd = s.customer("U")
    s.link(usd, "111111111111")
    plan_id = s.plan([{"vendor": "aws", "adjustment": "markup_percent", "value": "10"}])
    s.upload([row("80", day=1), row("20", day=2, service="Amazon Simple Storage Service")])
    s.drain()
    before_api = tenant.get(f"/v1/price-plans/{plan_id}/preview", params={"period": PERIOD}).json()
    admin = staff_client(runtime, tenant.msp_id)
    rules_before = _rules(runtime)
    response = post(
        admin,
        f"/console/pricing/plans/{plan_id}/rules",
        {
            "intent": "preview",
            "adjustment": "markup_percent",
            "value": "50",
            "service_name": "Amazon Simple Storage Service",
            "period": PERIOD,
        },
    )
    assert response.status_code == 200, response.text
    assert _rules(runtime) == rules_before  # the preview saved nothing
    # Before is the API's preview of the plan as saved; after, computed by hand:
    # EC2 80 at +10 % (88) and S3 20 at +50 % (30), the more specific rule winning.
    (api_customer,) = before_api["customers"]
    assert D(api_customer["amount"]) == D("110.00")
    cell = re.search(
        rf'data-customer="{usd}".*?data-before="([^"]*)".*?data-after="([^"]*)"',
        response.text,
        re.S,
    )
    assert cell is not None
    assert D(cell.group(1)) == D(api_customer["amount"])
    assert D(cell.group(2)) == D("118.00")
    assert 'data-chart="preview-usd-data"' in response.text
    # By service: EC2 80 → 88 both times; S3 20 → 22 before, 30 after.
    details = dict(
        (service, (D(before), D(after)))
        for service, before, after in re.findall(
            r'data-detail="aws\|([^"]+)".*?data-before="([^"]*)".*?data-after="([^"]*)"',
            response.text,
            re.S,
        )
    )
    assert details == {
        "Amazon Elastic Compute Cloud": (D("88.00"), D("88.00")),
        "Amazon Simple Storage Service": (D("22.00"), D("30.00")),
    }
    assert 'name="intent" value="save"' in response.text  # now it can be saved
    # Saving the same rule makes the API's preview what the page showed as "after".
    saved = post(
        admin,
        f"/console/pricing/plans/{plan_id}/rules",
        {
            "intent": "save",
            "adjustment": "markup_percent",
            "value": "50",
            "service_name": "Amazon Simple Storage Service",
        },
    )
    assert saved.status_code == 303
    after_api = tenant.get(f"/v1/price-plans/{plan_id}/preview", params={"period": PERIOD}).json()
    assert D(after_api["customers"][0]["amount"]) == D("118.00")

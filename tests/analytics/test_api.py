"""Help-desk analytics: the breakdowns add up to the charges, the daily series comes from
usage, the spike is flagged, the forecast is a run rate."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

from billbyte.analytics.service import analytics
from billbyte.auth.roles import Role
from billbyte.auth.subject import AuthSubject
from billbyte.runtime import Runtime
from tests.conftest import Tenant
from tests.rating.factories import Scenario, row

D = Decimal
EC2 = "Amazon Elastic Compute Cloud"


def test_analytics_adds_up_and_flags_the_spike(
    tenant: Tenant, runtime: Runtime, tmp_path: Path
) -> None:
    s = Scenario(tenant, runtime, tmp_path)
    s.account("aws")
    s.account("azure")
    a = s.customer("A")
    other = s.customer("B")
    s.link(a, "111111111111")
    s.link(a, "sub-a", vendor="azure")
    s.link(other, "222222222222")
    s.plan(
        [
            {"vendor": "aws", "adjustment": "markup_percent", "value": "10"},
            {"vendor": "azure", "adjustment": "markup_percent", "value": "20"},
        ]
    )
    aws = [row("10", day=d, resource=f"vm-{d}") for d in range(1, 10)]
    aws.append(row("100", day=10, resource="vm-big"))  # ten times any other day
    # A pass-through tax of 2.025: AWS sells 99 + 110 + 2.025 = 211.025.
    aws.append(row("2.025", day=10, charge="Tax", resource="tax"))
    aws.append(row("5000", day=10, sub="222222222222", resource="not-mine"))
    s.upload(aws)
    # Azure sells (9 + 1.0375) x 1.2 = 12.045.
    azure = [
        row("1", day=d, provider="Microsoft", sub="sub-a", service="VM", resource=f"az-{d}")
        for d in range(1, 10)
    ]
    azure.append(
        row("1.0375", day=5, provider="Microsoft", sub="sub-a", service="VM", resource="az-x")
    )
    s.upload(azure, vendor="azure")
    s.drain()

    charges = s.charges(a)
    # Each part rounds down (211.025 → 211.02, 12.045 → 12.04) but the total is 223.07.
    assert charges["total"] == "223.07"
    response = tenant.get(f"/v1/customers/{a}/analytics", params={"period": "2025-03"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] == charges["total"] and body["currency"] == "USD"
    by_vendor = {v["vendor"]: D(v["amount"]) for v in body["by_vendor"]}
    assert set(by_vendor) == {"aws", "azure"}
    assert sum(by_vendor.values()) == D("223.07")
    assert abs(by_vendor["aws"] - D("211.025")) < D("0.01")
    assert abs(by_vendor["azure"] - D("12.045")) < D("0.01")
    assert [v["vendor"] for v in body["by_vendor"]] == ["aws", "azure"]
    by_service = {v["service"]: D(v["amount"]) for v in body["by_service"]}
    assert set(by_service) == {EC2, "VM"} and sum(by_service.values()) == D("223.07")

    # Daily cost: the vendor's cost (billing currency) per day, this customer only.
    daily = {d["day"]: (d["currency"], D(d["cost"])) for d in body["daily_cost"]}
    expected = {f"2025-03-{d:02d}": D(11) for d in range(1, 10)}
    expected["2025-03-05"] += D("1.0375")
    expected["2025-03-10"] = D("102.025")
    assert daily == {day: ("USD", cost) for day, cost in expected.items()}
    assert [d["day"] for d in body["daily_cost"]] == sorted(expected)

    anomalies = body["anomalies"]
    assert [x["day"] for x in anomalies] == ["2025-03-10"]
    trailing = sum((expected[f"2025-03-{d:02d}"] for d in range(3, 10)), D(0)) / 7
    assert D(anomalies[0]["cost"]) == D("102.025")
    assert abs(D(anomalies[0]["trailing_mean"]) - trailing) < D("0.000001")
    assert D(anomalies[0]["factor"]) > 9

    top = body["top_resources"]
    costs = [D(t["cost"]) for t in top]
    assert costs == sorted(costs, reverse=True) and len(top) == 10
    assert (top[0]["resource_id"], costs[0]) == ("vm-big", D("100"))
    assert "not-mine" not in {t["resource_id"] for t in top}
    assert all(t["currency"] == "USD" for t in top)

    # The period is over: the forecast is what was spent.
    forecast = body["forecast"]
    assert forecast["method"] == "run_rate" and forecast["days_with_data"] == 10
    assert D(forecast["amount"]) == D("223.07")
    assert isinstance(body["recent_events"], list)


def test_forecast_mid_period_is_a_run_rate(
    tenant: Tenant, runtime: Runtime, tmp_path: Path
) -> None:
    s = Scenario(tenant, runtime, tmp_path)
    s.account("aws")
    a = s.customer("A", credit_limit="100")
    s.link(a, "111111111111")
    s.upload([row("10", day=d) for d in range(1, 7)])  # 60 over six days
    s.drain()
    subject = AuthSubject(msp_id=tenant.msp_id, actor="test", role=Role.HELPDESK)
    with runtime.uow() as uow:
        body = analytics(runtime, uow.session, subject, a, "2025-03", today=date(2025, 3, 6))
    forecast = body["forecast"]
    assert (forecast["days_with_data"], forecast["days_in_period"]) == (6, 31)
    assert D(forecast["amount"]) == D(60) / 6 * 31 == D("310")
    assert body["anomalies"] == []
    # The 50 % credit event shows among the recent events.
    assert "credit.threshold_reached" in {e["type"] for e in body["recent_events"]}


def test_analytics_of_a_customer_without_usage(tenant: Tenant) -> None:
    body = tenant.post(
        "/v1/customers", json={"external_id": "X", "name": "X", "currency": "JPY"}
    ).json()
    response = tenant.get(f"/v1/customers/{body['id']}/analytics", params={"period": "2025-03"})
    assert response.status_code == 200, response.text
    data = response.json()
    assert (data["total"], data["by_vendor"], data["daily_cost"], data["anomalies"]) == (
        "0",
        [],
        [],
        [],
    )
    assert data["forecast"]["amount"] == "0"
    bad = tenant.get(f"/v1/customers/{body['id']}/analytics", params={"period": "2025-13"})
    assert bad.status_code == 422

"""The usage API: multipart import, import records, summary by customer, isolation."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from tests.conftest import Tenant
from tests.usage.generate import write_focus


def _partner(tenant: Tenant) -> str:
    response = tenant.post("/v1/partner-accounts", json={"vendor": "aws", "display_name": "payer"})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _upload(tenant: Tenant, partner_account_id: str, path: Path, **form: str):
    with path.open("rb") as handle:
        return tenant.post(
            "/v1/usage/imports",
            data={"partner_account_id": partner_account_id, **form},
            files={"file": (path.name, handle, "text/csv")},
        )


@pytest.fixture
def focus_file(tmp_path: Path) -> tuple[Path, dict[str, Decimal]]:
    path = tmp_path / "export.csv"
    return path, write_focus(path, 200, seed=9, sub_accounts=3)


def test_import_then_summary_by_customer(tenant: Tenant, focus_file) -> None:
    path, expected = focus_file
    pa = _partner(tenant)
    created = _upload(tenant, pa, path)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["status"] == "completed" and body["detected_format"] == "focus"
    assert Decimal(body["totals"]["USD"]["billed_cost"]) == expected["BilledCost"]
    assert sorted(body["unassigned_sub_accounts"]) == [
        "100000000000",
        "100000000001",
        "100000000002",
    ]
    assert tenant.get(f"/v1/usage/imports/{body['id']}").json()["id"] == body["id"]
    assert [i["id"] for i in tenant.get("/v1/usage/imports").json()["data"]] == [body["id"]]

    summary = tenant.get("/v1/usage/summary", params={"period": "2026-10"}).json()
    assert [g["key"] for g in summary["groups"]] == ["unassigned"]

    customer = tenant.post(
        "/v1/customers", json={"external_id": "X", "name": "X", "currency": "EUR"}
    ).json()
    link = tenant.post(
        f"/v1/customers/{customer['id']}/vendor-accounts",
        json={"partner_account_id": pa, "vendor_identifier": "100000000001"},
    )
    assert link.status_code == 201
    by_customer = tenant.get(
        "/v1/usage/summary", params={"period": "2026-10", "group_by": "customer"}
    ).json()
    keys = {g["key"]: Decimal(g["billed_cost"]) for g in by_customer["groups"]}
    by_sub = tenant.get(
        "/v1/usage/summary", params={"period": "2026-10", "group_by": "sub_account"}
    ).json()
    subs = {g["key"]: Decimal(g["billed_cost"]) for g in by_sub["groups"]}
    assert keys[customer["id"]] == subs["100000000001"]
    assert keys["unassigned"] == subs["100000000000"] + subs["100000000002"]
    assert sum(keys.values()) == expected["BilledCost"]


def test_rejected_upload_is_a_422_problem_and_recorded(tenant: Tenant, tmp_path: Path) -> None:
    pa = _partner(tenant)
    path = tmp_path / "bad.csv"
    write_focus(path, 10)
    path.write_text(path.read_text().replace(",USD,", ",ZZZ,", 1))
    response = _upload(tenant, pa, path)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["code"] == "file_rejected" and problem["errors"][0]["row"] == 1
    record = tenant.get(f"/v1/usage/imports/{problem['import_id']}").json()
    assert record["status"] == "rejected" and record["rows_accepted"] == 0
    summary = tenant.get("/v1/usage/summary", params={"period": "2026-10"}).json()
    assert summary["totals"] == {}


def test_upload_is_idempotent_with_idempotency_key(tenant: Tenant, focus_file) -> None:
    path, _ = focus_file
    pa = _partner(tenant)
    with path.open("rb") as handle:
        content = handle.read()
    headers = {"Idempotency-Key": "upload-1"}
    first = tenant.post(
        "/v1/usage/imports",
        data={"partner_account_id": pa},
        files={"file": ("e.csv", content)},
        headers=headers,
    )
    second = tenant.post(
        "/v1/usage/imports",
        data={"partner_account_id": pa},
        files={"file": ("e.csv", content)},
        headers=headers,
    )
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] == second.json()["id"]
    assert second.headers.get("idempotent-replayed") == "true"
    assert len(tenant.get("/v1/usage/imports").json()["data"]) == 1


def test_bad_query_parameters(tenant: Tenant) -> None:
    for params in (
        {"period": "2026-13"},
        {"period": "oct"},
        {},
        {"period": "2026-10", "group_by": "nope"},
    ):
        response = tenant.get("/v1/usage/summary", params=params)
        assert response.status_code == 422, params
        assert response.json()["code"] == "validation_error"


def test_usage_endpoints_are_isolated_between_msps(
    tenant: Tenant, other_tenant: Tenant, focus_file
) -> None:
    path, _ = focus_file
    pa = _partner(tenant)
    imported = _upload(tenant, pa, path).json()
    assert other_tenant.get(f"/v1/usage/imports/{imported['id']}").status_code == 404
    assert other_tenant.get("/v1/usage/imports").json()["data"] == []
    assert _upload(other_tenant, pa, path).status_code == 404
    foreign = other_tenant.get(
        "/v1/usage/summary", params={"period": "2026-10", "partner_account_id": pa}
    )
    assert foreign.status_code == 404
    own = other_tenant.get("/v1/usage/summary", params={"period": "2026-10"}).json()
    assert own["totals"] == {} and own["slices"] == 0


def test_usage_endpoints_require_a_key(client, focus_file) -> None:
    for method, url in (
        ("get", "/v1/usage/imports"),
        ("get", "/v1/usage/imports/imp_x"),
        ("get", "/v1/usage/summary?period=2026-10"),
        ("post", "/v1/usage/imports"),
    ):
        response = getattr(client, method)(url)
        assert response.status_code == 401, url
        assert response.json()["code"] == "missing_api_key"


def test_helpdesk_cannot_import(tenant: Tenant, focus_file) -> None:
    path, _ = focus_file
    pa = _partner(tenant)
    helpdesk = Tenant(tenant.msp_id, tenant.issue_key("helpdesk"), tenant.client)
    assert _upload(helpdesk, pa, path).status_code == 403
    assert helpdesk.get("/v1/usage/summary", params={"period": "2026-10"}).status_code == 200

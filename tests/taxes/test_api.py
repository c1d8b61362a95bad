"""Tax rates: validation, overlap, roles and isolation."""

from __future__ import annotations

from tests.conftest import Tenant


def test_create_list_overlap_and_delete(tenant: Tenant, other_tenant: Tenant) -> None:
    body = {"country": "de", "name": "VAT", "rate": "19", "valid_from": "2026-01-01"}
    created = tenant.post("/v1/tax-rates", json=body)
    assert created.status_code == 201, created.text
    rate = created.json()
    assert rate["rate"] == "19" and rate["country"] == "DE"
    overlap = {**body, "rate": "16", "valid_from": "2026-06-01", "valid_until": "2027-01-01"}
    assert tenant.post("/v1/tax-rates", json=overlap).status_code == 409
    before = {**body, "rate": "16", "valid_from": "2025-01-01", "valid_until": "2026-01-01"}
    assert tenant.post("/v1/tax-rates", json=before).status_code == 201
    assert len(tenant.get("/v1/tax-rates").json()["data"]) == 2
    assert other_tenant.get(f"/v1/tax-rates/{rate['id']}").status_code == 404
    assert other_tenant.delete(f"/v1/tax-rates/{rate['id']}").status_code == 404
    patched = tenant.patch(f"/v1/tax-rates/{rate['id']}", json={"rate": "7.5"})
    assert patched.status_code == 200 and patched.json()["rate"] == "7.5"
    assert tenant.delete(f"/v1/tax-rates/{rate['id']}").status_code == 204
    assert tenant.get(f"/v1/tax-rates/{rate['id']}").status_code == 404


def test_bad_rates_and_ranges_are_422(tenant: Tenant) -> None:
    base = {"country": None, "name": "VAT", "valid_from": "2026-01-01"}
    for rate in ("101", "-1", "abc", "NaN"):
        response = tenant.post("/v1/tax-rates", json={**base, "rate": rate})
        assert response.status_code == 422, rate
    backwards = {**base, "rate": "19", "valid_until": "2025-12-31"}
    assert tenant.post("/v1/tax-rates", json=backwards).status_code == 422


def test_helpdesk_cannot_write(tenant: Tenant) -> None:
    headers = {"Authorization": f"Bearer {tenant.issue_key('helpdesk')}"}
    body = {"name": "VAT", "rate": "19", "valid_from": "2026-01-01"}
    assert tenant.client.post("/v1/tax-rates", json=body, headers=headers).status_code == 403
    assert tenant.client.get("/v1/tax-rates", headers=headers).status_code == 200

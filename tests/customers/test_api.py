from __future__ import annotations

from tests.conftest import Tenant


def partner(tenant: Tenant, vendor: str = "aws") -> dict:
    response = tenant.post(
        "/v1/partner-accounts",
        json={
            "vendor": vendor,
            "display_name": f"{vendor} payer",
            "credentials": {"access_key_id": "AKIA", "secret_access_key": "s3cr3t"},
            "partner_discount_percent": "15",
        },
    )
    assert response.status_code == 201, response.text
    return response.json()


def customer_body(external_id: str = "C-1", **extra: object) -> dict:
    return {
        "external_id": external_id,
        "name": "Acme",
        "currency": "eur",
        "country": "de",
        "locale": "de-DE",
        **extra,
    }


def test_create_is_idempotent_on_external_id(tenant: Tenant) -> None:
    first = tenant.post("/v1/customers", json=customer_body())
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["currency"] == "EUR" and body["country"] == "DE" and body["locale"] == "de_DE"
    again = tenant.post("/v1/customers", json=customer_body(name="Other name"))
    assert again.status_code == 200
    assert again.json()["id"] == body["id"] and again.json()["name"] == "Acme"
    listed = tenant.get("/v1/customers", params={"external_id": "C-1"}).json()
    assert [c["id"] for c in listed["data"]] == [body["id"]]


def test_unknown_currency_is_a_422_problem_with_field_path(tenant: Tenant) -> None:
    response = tenant.post("/v1/customers", json=customer_body(currency="XYZ"))
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["code"] == "validation_error"
    assert [e["field"] for e in problem["errors"]] == ["currency"]


def test_link_vendor_account_once_per_partner_account(tenant: Tenant) -> None:
    pa = partner(tenant)
    c1 = tenant.post("/v1/customers", json=customer_body("C-1")).json()
    c2 = tenant.post("/v1/customers", json=customer_body("C-2")).json()
    link = tenant.post(
        f"/v1/customers/{c1['id']}/vendor-accounts",
        json={"partner_account_id": pa["id"], "vendor_identifier": "123456789012"},
    )
    assert link.status_code == 201, link.text
    assert link.json()["kind"] == "aws_account"
    clash = tenant.post(
        f"/v1/customers/{c2['id']}/vendor-accounts",
        json={"partner_account_id": pa["id"], "vendor_identifier": "123456789012"},
    )
    assert clash.status_code == 409 and clash.json()["code"] == "vendor_account_taken"
    gone = tenant.delete(f"/v1/customers/{c1['id']}/vendor-accounts/{link.json()['id']}")
    assert gone.status_code == 204
    relink = tenant.post(
        f"/v1/customers/{c2['id']}/vendor-accounts",
        json={"partner_account_id": pa["id"], "vendor_identifier": "123456789012"},
    )
    assert relink.status_code == 201

"""Bad input is a 422 problem with field paths, unknown routes a 404 problem: never a 500."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.factories import (
    assert_problem,
    call,
    customer_body,
    fill,
    make_customer,
    make_partner,
)
from tests.conftest import Tenant

CUSTOMERS = "/v1/customers"
CUSTOMER = "/v1/customers/{customer}"
PARTNERS = "/v1/partner-accounts"
PARTNER = "/v1/partner-accounts/{partner_account}"
LINKS = "/v1/customers/{customer}/vendor-accounts"


def _c(**changes: Any) -> dict[str, Any]:
    body = customer_body("BAD-1")
    for key, value in changes.items():
        if value is ...:
            body.pop(key)
        else:
            body[key] = value
    return body


def _p(**changes: Any) -> dict[str, Any]:
    return {"vendor": "aws", "display_name": "Payer", **changes}


def _l(**changes: Any) -> dict[str, Any]:
    return {"partner_account_id": "{partner_account}", "vendor_identifier": "1234", **changes}


# (case id, method, url, JSON body, field expected in errors[], problem code)
V = "validation_error"
INVALID: list[tuple[str, str, str, Any, str, str]] = [
    ("customer wrong type name", "POST", CUSTOMERS, _c(name=123), "name", V),
    ("customer missing external_id", "POST", CUSTOMERS, _c(external_id=...), "external_id", V),
    ("customer empty name", "POST", CUSTOMERS, _c(name=""), "name", V),
    ("customer unknown field", "POST", CUSTOMERS, _c(colour="blue"), "colour", V),
    ("customer status not settable", "POST", CUSTOMERS, _c(status="suspended"), "status", V),
    ("customer unknown currency", "POST", CUSTOMERS, _c(currency="EURO"), "currency", V),
    ("customer currency number", "POST", CUSTOMERS, _c(currency=978), "currency", V),
    ("customer unknown country", "POST", CUSTOMERS, _c(country="QQ"), "country", V),
    ("customer country ZZ", "POST", CUSTOMERS, _c(country="ZZ"), "country", V),
    ("customer country EU", "POST", CUSTOMERS, _c(country="EU"), "country", V),
    ("customer country alpha-3", "POST", CUSTOMERS, _c(country="DEU"), "country", V),
    ("customer unknown locale", "POST", CUSTOMERS, _c(locale="xx_YY"), "locale", V),
    ("customer garbage locale", "POST", CUSTOMERS, _c(locale="not a locale"), "locale", V),
    ("customer anchor 0", "POST", CUSTOMERS, _c(billing_anchor_day=0), "billing_anchor_day", V),
    ("customer anchor 29", "POST", CUSTOMERS, _c(billing_anchor_day=29), "billing_anchor_day", V),
    (
        "customer anchor text",
        "POST",
        CUSTOMERS,
        _c(billing_anchor_day="first"),
        "billing_anchor_day",
        V,
    ),
    ("customer weekly cycle", "POST", CUSTOMERS, _c(billing_cycle="weekly"), "billing_cycle", V),
    ("customer negative credit", "POST", CUSTOMERS, _c(credit_limit="-0.01"), "credit_limit", V),
    ("customer credit not a number", "POST", CUSTOMERS, _c(credit_limit="lots"), "credit_limit", V),
    ("customer credit NaN", "POST", CUSTOMERS, _c(credit_limit="NaN"), "credit_limit", V),
    ("customer credit too large", "POST", CUSTOMERS, _c(credit_limit="1e30"), "credit_limit", V),
    (
        "customer credit too precise",
        "POST",
        CUSTOMERS,
        _c(credit_limit="0.0000000000000000001"),
        "credit_limit",
        V,
    ),
    ("customer vendors not a list", "POST", CUSTOMERS, _c(vendors="aws"), "vendors", V),
    ("customer unknown vendor", "POST", CUSTOMERS, _c(vendors=["aws", "oracle"]), "vendors.1", V),
    ("customer metadata not an object", "POST", CUSTOMERS, _c(metadata="x"), "metadata", V),
    ("patch unknown currency", "PATCH", CUSTOMER, {"currency": "XYZ"}, "currency", V),
    ("patch unknown country", "PATCH", CUSTOMER, {"country": "QQ"}, "country", V),
    ("patch unknown locale", "PATCH", CUSTOMER, {"locale": "zz_ZZ"}, "locale", V),
    ("patch anchor 29", "PATCH", CUSTOMER, {"billing_anchor_day": 29}, "billing_anchor_day", V),
    ("patch negative credit", "PATCH", CUSTOMER, {"credit_limit": "-5"}, "credit_limit", V),
    ("patch external_id is immutable", "PATCH", CUSTOMER, {"external_id": "NEW"}, "external_id", V),
    ("patch null name", "PATCH", CUSTOMER, {"name": None}, "name", V),
    ("patch null currency", "PATCH", CUSTOMER, {"currency": None}, "currency", V),
    ("patch null vendors", "PATCH", CUSTOMER, {"vendors": None}, "vendors", V),
    ("partner unknown vendor", "POST", PARTNERS, _p(vendor="oracle"), "vendor", V),
    ("partner missing name", "POST", PARTNERS, {"vendor": "aws"}, "display_name", V),
    (
        "partner discount > 100",
        "POST",
        PARTNERS,
        _p(partner_discount_percent="100.01"),
        "partner_discount_percent",
        V,
    ),
    (
        "partner discount < 0",
        "POST",
        PARTNERS,
        _p(partner_discount_percent="-1"),
        "partner_discount_percent",
        V,
    ),
    ("partner bad url", "POST", PARTNERS, _p(endpoint_url="not a url"), "endpoint_url", V),
    ("partner ftp url", "POST", PARTNERS, _p(endpoint_url="ftp://example.com"), "endpoint_url", V),
    (
        "partner url too long",
        "POST",
        PARTNERS,
        _p(endpoint_url="https://e.com/" + "a" * 600),
        "endpoint_url",
        V,
    ),
    (
        "partner credentials not an object",
        "POST",
        PARTNERS,
        _p(credentials="hunter2"),
        "credentials",
        V,
    ),
    ("partner sandbox not a bool", "POST", PARTNERS, _p(sandbox="maybe"), "sandbox", V),
    ("partner unknown field", "POST", PARTNERS, _p(password="x"), "password", V),
    ("partner patch bad status", "PATCH", PARTNER, {"status": "deleted"}, "status", V),
    ("partner patch vendor", "PATCH", PARTNER, {"vendor": "gcp"}, "vendor", V),
    ("partner patch null name", "PATCH", PARTNER, {"display_name": None}, "display_name", V),
    (
        "partner patch null discount",
        "PATCH",
        PARTNER,
        {"partner_discount_percent": None},
        "partner_discount_percent",
        V,
    ),
    ("partner patch null terms", "PATCH", PARTNER, {"discount_terms": None}, "discount_terms", V),
    ("partner patch null status", "PATCH", PARTNER, {"status": None}, "status", V),
    ("partner patch null sandbox", "PATCH", PARTNER, {"sandbox": None}, "sandbox", V),
    (
        "link missing identifier",
        "POST",
        LINKS,
        {"partner_account_id": "{partner_account}"},
        "vendor_identifier",
        V,
    ),
    ("link unknown kind", "POST", LINKS, _l(kind="s3_bucket"), "kind", V),
    (
        "link kind of another vendor",
        "POST",
        LINKS,
        _l(kind="azure_subscription"),
        "kind",
        "wrong_vendor_account_kind",
    ),
    ("link unknown field", "POST", LINKS, _l(customer_id="x"), "customer_id", V),
    ("key unknown role", "POST", "/v1/api-keys", {"name": "x", "role": "root"}, "role", V),
    ("key empty name", "POST", "/v1/api-keys", {"name": "", "role": "billing"}, "name", V),
    (
        "key unknown field",
        "POST",
        "/v1/api-keys",
        {"name": "x", "role": "admin", "secret": "mine"},
        "secret",
        V,
    ),
]


@pytest.fixture
def ids(tenant: Tenant) -> dict[str, str]:
    return {
        "partner_account": make_partner(tenant)["id"],
        "customer": make_customer(tenant, "EXISTING-1")["id"],
    }


def _state(tenant: Tenant, ids: dict[str, str]) -> Any:
    return (
        tenant.get("/v1/customers", params={"limit": 500}).json(),
        tenant.get("/v1/partner-accounts", params={"limit": 500}).json(),
        tenant.get(f"/v1/customers/{ids['customer']}/vendor-accounts").json(),
        len(tenant.get("/v1/api-keys").json()["data"]),
        tenant.get("/v1/audit-events", params={"limit": 500}).json(),
    )


GROUPS = sorted({case[0].split()[0] for case in INVALID})


@pytest.mark.parametrize("group", GROUPS)
def test_invalid_input_is_a_422_problem_with_the_field(
    tenant: Tenant, ids: dict[str, str], group: str
) -> None:
    """One test per resource (cases run in a loop to keep the suite fast); every case is
    reported by name on failure."""
    before = _state(tenant, ids)
    failures: list[str] = []
    for name, method, template, body, field, code in INVALID:
        if name.split()[0] != group:
            continue
        response = call(tenant, method, fill(template, ids), fill(body, ids))
        try:
            problem = assert_problem(response, 422, code)
            assert problem["instance"] == fill(template, ids)
            assert field in [error["field"] for error in problem["errors"]], problem
            for error in problem["errors"]:
                assert set(error) == {"field", "message", "type"} and error["message"]
        except AssertionError as exc:
            failures.append(f"{name}: {exc}")
    assert failures == []
    assert _state(tenant, ids) == before  # nothing created, changed or audited


MALFORMED = [b'{"external_id": "X", ', b"not json at all", b"[1, 2, 3]", b'"a string"', b"null"]
BAD_QUERIES: list[tuple[str, dict[str, str], str]] = [
    ("/v1/customers", {"limit": "0"}, "limit"),
    ("/v1/customers", {"limit": "-1"}, "limit"),
    ("/v1/customers", {"limit": "10000"}, "limit"),
    ("/v1/customers", {"limit": "501"}, "limit"),
    ("/v1/customers", {"limit": "ten"}, "limit"),
    ("/v1/customers", {"status": "deleted"}, "status"),
    ("/v1/partner-accounts", {"limit": "0"}, "limit"),
    ("/v1/partner-accounts", {"vendor": "oracle"}, "vendor"),
    ("/v1/audit-events", {"limit": "10000"}, "limit"),
]
UNKNOWN_ROUTES: list[tuple[str, str, int, str]] = [
    ("GET", "/v1/nothing-here", 404, "not_found"),
    ("GET", "/nothing-here", 404, "not_found"),
    ("POST", "/v1/customers/cus_x/unknown", 404, "not_found"),
    ("GET", "/v2/customers", 404, "not_found"),
    ("DELETE", "/v1/customers", 405, "method_not_allowed"),
    ("PUT", "/v1/partner-accounts", 405, "method_not_allowed"),
]


def test_malformed_json_body(tenant: Tenant) -> None:
    for content in MALFORMED:
        response = tenant.post(
            "/v1/customers", content=content, headers={"Content-Type": "application/json"}
        )
        problem = assert_problem(response, 422, "validation_error")
        assert [e["field"] for e in problem["errors"]] == ["body"], content
    assert tenant.get("/v1/customers").json()["data"] == []


def test_invalid_query_parameters(tenant: Tenant) -> None:
    for url, params, field in BAD_QUERIES:
        problem = assert_problem(tenant.get(url, params=params), 422, "validation_error")
        assert [e["field"] for e in problem["errors"]] == [field], (url, params)


def test_unknown_routes_are_problems(tenant: Tenant) -> None:
    for method, url, status, code in UNKNOWN_ROUTES:
        response = tenant.client.request(method, url, headers=tenant.headers)
        assert_problem(response, status, code)


# Inputs that slip past validation and used to reach the database (PostgreSQL refuses NUL
# characters): whatever the answer, it is never a 500.
ODD_INPUTS: list[tuple[str, str, Any, dict[str, str]]] = [
    ("POST", CUSTOMERS, _c(name="Null\u0000Byte"), {}),
    ("POST", CUSTOMERS, _c(external_id="ext\u0000"), {}),
    ("POST", CUSTOMERS, _c(metadata={"note": "a\u0000b"}), {}),
    ("POST", CUSTOMERS, _c(metadata={"k\u0000": 1}), {}),
    ("POST", PARTNERS, _p(discount_terms={"tier\u0000": "gold"}), {}),
    ("POST", PARTNERS, _p(credentials={"secret": "a\u0000b"}), {}),
    ("POST", LINKS, _l(vendor_identifier="12\u000034"), {}),
    ("POST", LINKS, {"partner_account_id": "pa\u0000", "vendor_identifier": "1"}, {}),
    ("PATCH", CUSTOMER, {"name": "\u0000"}, {}),
    ("PATCH", PARTNER, {"vendor_account_id": "\u0000"}, {}),
    ("GET", "/v1/customers/cus%00x", None, {}),
    ("GET", "/v1/partner-accounts/%00", None, {}),
    ("GET", "/v1/customers", None, {"external_id": "a\u0000b"}),
    ("GET", "/v1/customers", None, {"cursor": "\u0000"}),
    ("GET", "/v1/audit-events", None, {"target_id": "\u0000", "cursor": "x" * 5000}),
    ("GET", "/v1/customers", None, {"external_id": "é" * 5000}),
    ("POST", CUSTOMERS, _c(name="ü" * 200, external_id="😀" * 200), {}),
]


def test_odd_input_is_never_a_500(tenant: Tenant, ids: dict[str, str]) -> None:
    failures: list[str] = []
    for method, template, body, params in ODD_INPUTS:
        response = call(tenant, method, fill(template, ids), fill(body, ids), params=params)
        if response.status_code >= 500:
            failures.append(f"{method} {template} {body!r} {params!r}: {response.text}")
        elif response.status_code >= 400:
            assert_problem(response, response.status_code)
        # The service is still healthy afterwards (no poisoned transaction or connection).
        assert tenant.get(f"/v1/customers/{ids['customer']}").status_code == 200
        assert tenant.get(f"/v1/partner-accounts/{ids['partner_account']}").status_code == 200
    assert failures == []


def test_partner_account_survives_a_rejected_null_patch(tenant: Tenant) -> None:
    """Regression: ``discount_terms: null`` was stored and made the account unreadable."""
    partner = make_partner(tenant, discount_terms={"tier": "gold"})
    url = f"/v1/partner-accounts/{partner['id']}"
    assert_problem(tenant.patch(url, json={"discount_terms": None}), 422)
    after = tenant.get(url)
    assert after.status_code == 200
    assert after.json()["discount_terms"] == {"tier": "gold"}

"""Issue 12: API error messages a newcomer can act on — where a JSON body stopped parsing,
what a pattern means in words (never the regex), and the header to send when a form body
reaches a JSON endpoint."""

from __future__ import annotations

from typing import Any

from tests.conftest import Tenant


def _error(body: dict[str, Any], field: str) -> dict[str, Any]:
    return next(e for e in body["errors"] if e["field"] == field)


def test_a_json_syntax_error_is_located_by_line_and_column(tenant: Tenant) -> None:
    text = '{"period": "2026-11",\n "force": tru}'
    response = tenant.client.post(
        "/v1/invoice-runs",
        content=text.encode(),
        headers={**tenant.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    body = response.json()
    # the "t" of "tru" is the 11th character of line 2; offset 22 + 10 = 32 (0-based)
    assert text.index("tru") == 32
    assert "at line 2, column 11 (character 32)" in _error(body, "body")["message"]
    assert "line 2, column 11" in body["detail"]
    assert "Expecting value" in body["detail"]


def test_a_bad_period_reads_as_words_not_a_regex(tenant: Tenant) -> None:
    for response in (
        tenant.get("/v1/usage/summary", params={"period": "Nov 2026"}),
        tenant.post("/v1/invoice-runs", json={"period": "11/2026"}),
    ):
        assert response.status_code == 422
        detail = response.json()["detail"]
        assert "period: must look like 2026-11" in detail
        assert "^" not in detail and "[0-9]" not in detail


def test_pattern_fields_say_what_is_expected_in_words(tenant: Tenant) -> None:
    plan = tenant.post(
        "/v1/price-plans",
        json={
            "name": "p",
            "rules": [{"adjustment": "markup", "value": "10", "charge_category": "Bogus"}],
        },
    ).json()
    error = _error(plan, "rules.0.charge_category")
    assert error["message"] == "must be one of Usage, Purchase, Tax, Credit, Adjustment"
    assert "^" not in plan["detail"]
    status = tenant.client.patch(
        "/v1/partner-accounts/pa_none", json={"status": "gone"}, headers=tenant.headers
    ).json()
    assert _error(status, "status")["message"] == "must be one of active, disabled"
    rates = tenant.client.put(
        "/v1/fx-rates",
        json={
            "rates": [{"base": "EUR", "quote": "USD", "date": "2026-11-02", "rate": "1.1"}],
            "source": "My Bank!",
        },
        headers=tenant.headers,
    ).json()
    message = _error(rates, "source")["message"]
    assert message.startswith("must be 1 to 20 characters") and "^" not in rates["detail"]


def test_a_form_body_at_a_json_endpoint_hints_at_the_content_type(tenant: Tenant) -> None:
    for response in (
        tenant.client.post("/v1/invoice-runs", data={"period": "2026-11"}, headers=tenant.headers),
        tenant.client.post(
            "/v1/invoice-runs", files={"period": ("p", b"2026-11")}, headers=tenant.headers
        ),
    ):
        assert response.status_code == 422
        assert "send Content-Type: application/json" in response.json()["detail"]
    ok_json = tenant.post("/v1/invoice-runs", json={"period": "11/2026"}).json()
    assert "Content-Type" not in ok_json["detail"]

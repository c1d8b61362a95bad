"""Cursor pagination: every object exactly once, in creation order, across pages."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.factories import make_customer, make_partner
from tests.conftest import Tenant


def _pages(tenant: Tenant, url: str, limit: int, **params: Any) -> list[dict[str, Any]]:
    pages: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        query = {"limit": limit, **params, **({"cursor": cursor} if cursor else {})}
        response = tenant.get(url, params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        pages.append(page)
        assert len(pages) <= 50, "pagination does not terminate"
        if not page["has_more"]:
            assert page["next_cursor"] is None
            return pages
        assert page["next_cursor"]
        cursor = page["next_cursor"]


def test_customers_page_by_page(tenant: Tenant, other_tenant: Tenant) -> None:
    created: list[str] = []
    for n in range(7):
        created.append(make_customer(tenant, f"C-{n}")["id"])
        if n % 3 == 0:  # the other MSP's customers are interleaved in id order
            make_customer(other_tenant, f"C-{n}")
    pages = _pages(tenant, "/v1/customers", limit=3)
    assert [len(p["data"]) for p in pages] == [3, 3, 1]
    assert [p["has_more"] for p in pages] == [True, True, False]
    seen = [c["id"] for p in pages for c in p["data"]]
    assert seen == created  # each exactly once, oldest first
    assert [c["external_id"] for p in pages for c in p["data"]] == [f"C-{n}" for n in range(7)]


@pytest.mark.parametrize(("limit", "sizes"), [(7, [7]), (1, [1] * 7), (500, [7]), (6, [6, 1])])
def test_page_boundaries(tenant: Tenant, limit: int, sizes: list[int]) -> None:
    created = [make_customer(tenant, f"B-{n}")["id"] for n in range(7)]
    pages = _pages(tenant, "/v1/customers", limit=limit)
    assert [len(p["data"]) for p in pages] == sizes
    assert [c["id"] for p in pages for c in p["data"]] == created


def test_default_page_and_filters(tenant: Tenant) -> None:
    created = [make_customer(tenant, f"D-{n}")["id"] for n in range(3)]
    page = tenant.get("/v1/customers").json()
    assert [c["id"] for c in page["data"]] == created
    assert page["has_more"] is False and page["next_cursor"] is None
    only = tenant.get("/v1/customers", params={"external_id": "D-1"}).json()["data"]
    assert [c["id"] for c in only] == [created[1]]
    active = _pages(tenant, "/v1/customers", limit=2, status="active")
    assert [c["id"] for p in active for c in p["data"]] == created
    assert tenant.get("/v1/customers", params={"status": "suspended"}).json()["data"] == []
    assert tenant.get("/v1/customers", params={"external_id": "nope"}).json()["data"] == []


def test_a_cursor_past_the_end_is_an_empty_page(tenant: Tenant) -> None:
    make_customer(tenant, "E-1")
    page = tenant.get("/v1/customers", params={"cursor": "cus_ZZZZZZZZZZZZZZZZZZZZZZZZZZ"})
    assert page.status_code == 200
    assert page.json() == {"data": [], "next_cursor": None, "has_more": False}


def test_objects_created_while_paging_are_not_lost(tenant: Tenant) -> None:
    first = [make_customer(tenant, f"F-{n}")["id"] for n in range(3)]
    page = tenant.get("/v1/customers", params={"limit": 2}).json()
    late = make_customer(tenant, "F-late")["id"]
    rest = tenant.get("/v1/customers", params={"limit": 2, "cursor": page["next_cursor"]}).json()
    assert [c["id"] for c in page["data"] + rest["data"]] == [*first, late]


def test_partner_accounts_page_by_page(tenant: Tenant) -> None:
    created = [make_partner(tenant, v)["id"] for v in ("aws", "azure", "gcp", "microsoft365")]
    pages = _pages(tenant, "/v1/partner-accounts", limit=3)
    assert [len(p["data"]) for p in pages] == [3, 1]
    assert [a["id"] for p in pages for a in p["data"]] == created

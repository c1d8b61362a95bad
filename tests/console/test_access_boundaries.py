"""Every admin-area console route (pricing, FX & credit, access, webhooks, audit,
branding): another MSP's ids are 404 and change nothing; help desk may POST nothing;
billing may not do an admin's work; no POST is accepted without the CSRF token."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, inspect, text

from billbyte.runtime import Runtime
from tests.api.factories import make_customer
from tests.conftest import Tenant
from tests.console.admin_helpers import post, staff_client
from tests.web.people import add_staff

RULE = {"intent": "save", "adjustment": "markup_percent", "value": "5"}
PREVIEW = {**RULE, "intent": "preview", "period": "2026-01"}


@dataclass(frozen=True)
class World:
    plan: str
    rule: str
    user: str
    key: str
    endpoint: str
    event: str


def build(runtime: Runtime, tenant: Tenant) -> World:
    rules = [{"adjustment": "markup_percent", "value": "5"}]
    plan = tenant.post("/v1/price-plans", json={"name": "P", "rules": rules}).json()
    endpoint = tenant.post(
        "/v1/webhook-endpoints", json={"url": "http://127.0.0.1:9/h", "event_types": ["*"]}
    ).json()
    make_customer(tenant)
    event = tenant.get("/v1/webhook-events").json()["data"][0]
    key = tenant.post("/v1/api-keys", json={"name": "k", "role": "billing"}).json()
    user = add_staff(runtime, tenant.msp_id, "billing", email=f"u-{tenant.msp_id[-6:]}@x.example")
    return World(
        plan["id"], plan["rules"][0]["id"], user.id, key["id"], endpoint["id"], event["id"]
    )


def gets(w: World) -> list[str]:
    return [
        f"/console/pricing/plans/{w.plan}",
        f"/console/pricing/rules/{w.rule}",
        f"/console/pricing/rules/{w.rule}/delete",
        f"/console/access/keys/{w.key}/revoke",
        f"/console/webhooks/endpoints/{w.endpoint}/disable",
        f"/console/webhooks/events/{w.event}",
    ]


def id_posts(w: World) -> list[tuple[str, dict[str, str]]]:
    return [
        (f"/console/pricing/plans/{w.plan}/rules", RULE),
        (f"/console/pricing/plans/{w.plan}/rules", PREVIEW),
        (f"/console/pricing/rules/{w.rule}", RULE),
        (f"/console/pricing/rules/{w.rule}", PREVIEW),
        (f"/console/pricing/rules/{w.rule}/delete", {}),
        (f"/console/access/users/{w.user}/link", {}),
        (f"/console/access/users/{w.user}/disable", {}),
        (f"/console/access/users/{w.user}/enable", {}),
        (f"/console/access/users/{w.user}/role", {"role": "helpdesk"}),
        (f"/console/access/keys/{w.key}/revoke", {}),
        (f"/console/webhooks/endpoints/{w.endpoint}/disable", {}),
        (f"/console/webhooks/events/{w.event}/replay", {}),
    ]


ADMIN_ONLY = (
    ("/console/access/users", {"email": "n@x.example", "role": "billing"}),
    ("/console/access/keys", {"name": "n", "role": "billing"}),
    ("/console/branding", {"primary_colour": "#112233"}),
    ("/console/branding/logo/delete", {}),
)
WRITES = (
    ("/console/pricing/plans", {"name": "New"}),
    ("/console/fx/rates", {"date": "2026-11-02", "base": "EUR", "rates": "USD 1.1"}),
    (
        "/console/fx/policy",
        {"base_currency": "EUR", "mode": "charge_day", "max_staleness_days": "3"},
    ),
    ("/console/fx/credit-policy", {"thresholds": "80", "action": "notify", "suspend_at": "100"}),
    ("/console/webhooks/endpoints", {"url": "http://127.0.0.1:9/x", "event_types": "*"}),
)


def posts(w: World) -> list[tuple[str, dict[str, str]]]:
    return [*id_posts(w), *ADMIN_ONLY, *WRITES]


def dump(engine: Engine) -> str:
    """Every table but the sign-in bookkeeping (sessions, last sign-in times)."""
    skip = {"web_sessions", "msp_users", "rate_limit_hits"}
    chunks: list[str] = []
    with engine.connect() as connection:
        for table in sorted(inspect(connection).get_table_names()):
            if table not in skip:
                rows = connection.execute(text(f'SELECT * FROM "{table}"'))
                chunks.extend(f"{table}: {tuple(row)!r}" for row in rows)
    return "\n".join(chunks)


@pytest.fixture
def worlds(runtime: Runtime, tenant: Tenant, other_tenant: Tenant) -> tuple[World, World]:
    return build(runtime, tenant), build(runtime, other_tenant)


def test_another_msps_ids_are_404_on_every_page_and_post(
    runtime: Runtime, tenant: Tenant, worlds: tuple[World, World]
) -> None:
    _, theirs = worlds
    admin = staff_client(runtime, tenant.msp_id)
    before = dump(runtime.engine)
    for url in gets(theirs):
        response = admin.get(url)
        assert response.status_code == 404, url
        assert "text/html" in response.headers["content-type"]
    for url, data in id_posts(theirs):
        assert post(admin, url, data).status_code == 404, url
    assert dump(runtime.engine) == before


def test_the_same_routes_work_with_ones_own_ids(
    runtime: Runtime, tenant: Tenant, worlds: tuple[World, World]
) -> None:
    """The 404s above are about ownership: the MSP's own ids answer."""
    mine, _ = worlds
    admin = staff_client(runtime, tenant.msp_id)
    for url in gets(mine):
        assert admin.get(url).status_code == 200, url


def test_help_desk_may_post_nothing(
    runtime: Runtime, tenant: Tenant, worlds: tuple[World, World]
) -> None:
    mine, _ = worlds
    helpdesk = staff_client(runtime, tenant.msp_id, "helpdesk")
    before = dump(runtime.engine)
    for url, data in posts(mine):
        assert post(helpdesk, url, data).status_code == 403, url
    assert dump(runtime.engine) == before


def test_billing_may_not_do_an_admins_work(
    runtime: Runtime, tenant: Tenant, worlds: tuple[World, World]
) -> None:
    mine, _ = worlds
    billing = staff_client(runtime, tenant.msp_id, "billing")
    before = dump(runtime.engine)
    admin_only = [*id_posts(mine)[5:10], *ADMIN_ONLY]
    for url, data in admin_only:
        assert post(billing, url, data).status_code == 403, url
    assert dump(runtime.engine) == before


def test_no_post_without_the_csrf_token(
    runtime: Runtime, tenant: Tenant, worlds: tuple[World, World]
) -> None:
    mine, _ = worlds
    admin = staff_client(runtime, tenant.msp_id)
    before = dump(runtime.engine)
    for url, data in posts(mine):
        for token in (None, "forged-token-value-1234567890"):
            body = dict(data) if token is None else {**data, "csrf_token": token}
            assert admin.post(url, data=body, follow_redirects=False).status_code == 403, url
    assert dump(runtime.engine) == before


PAGES = (
    "/console/pricing",
    "/console/fx",
    "/console/access",
    "/console/webhooks",
    "/console/audit",
    "/console/branding",
)


def test_signed_out_pages_send_to_sign_in(
    runtime: Runtime, client: TestClient, worlds: tuple[World, World]
) -> None:
    mine, _ = worlds
    for url in [*PAGES, *gets(mine)]:
        response = client.get(url, follow_redirects=False)
        assert response.status_code == 303, url
        assert response.headers["location"].startswith("/console/sign-in"), url
    before = dump(runtime.engine)
    for url, data in posts(mine):
        assert client.post(url, data=data, follow_redirects=False).status_code == 303, url
    assert dump(runtime.engine) == before

"""GET /metrics: off without BILLBYTE_METRICS_TOKEN, behind its bearer token otherwise; the
request histogram by route template (never a tenant's id); installation-wide figures read
from the database at scrape time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine

from billbyte.app import create_app
from billbyte.connectors.models import PartnerSync
from billbyte.jobs.models import Job
from billbyte.observability.collector import database_metrics
from billbyte.runtime import Runtime
from billbyte.webhooks import worker as webhook_worker
from tests.api.factories import assert_problem, make_customer, make_partner
from tests.conftest import Tenant

pytestmark = pytest.mark.storage

TOKEN = "scrape-token-Zq8"
SCRAPE = {"Authorization": f"Bearer {TOKEN}"}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_metrics_answer_404_without_a_configured_token(client: TestClient) -> None:
    response = client.get("/metrics")
    problem = assert_problem(response, 404, "not_found")
    assert "billbyte" not in response.text.replace(problem["type"], "")
    assert client.get("/metrics", headers=SCRAPE).status_code == 404


def test_metrics_need_the_configured_token(runtime: Runtime, client: TestClient) -> None:
    runtime.settings.metrics_token = TOKEN
    missing = client.get("/metrics")
    assert_problem(missing, 401, "unauthenticated")
    assert missing.headers["www-authenticate"] == "Bearer"
    assert_problem(client.get("/metrics", headers={"Authorization": "Basic " + TOKEN}), 401)
    wrong = client.get("/metrics", headers={"Authorization": "Bearer not-the-token"})
    assert_problem(wrong, 403, "forbidden")
    assert TOKEN not in wrong.text
    right = client.get("/metrics", headers=SCRAPE)
    assert right.status_code == 200
    assert right.headers["content-type"].startswith("text/plain")


def test_request_latency_is_labelled_by_route_template_not_by_id(
    runtime: Runtime, client: TestClient, tenant: Tenant
) -> None:
    runtime.settings.metrics_token = TOKEN
    customer = make_customer(tenant, "C-OBS-1")
    # The histogram is the process's (other tests' requests count too): compare with before.
    before = samples(client.get("/metrics", headers=SCRAPE).text)
    assert tenant.get(f"/v1/customers/{customer['id']}").status_code == 200
    assert tenant.get("/v1/customers/cus_does_not_exist").status_code == 404
    tenant.get("/no/such/path/cus_secretish")
    body = client.get("/metrics", headers=SCRAPE).text
    found = samples(body)
    route = "/v1/customers/{customer_id}"
    ok = ("method", "GET"), ("route", route), ("status_class", "2xx")
    missing = ("method", "GET"), ("route", route), ("status_class", "4xx")
    count = "billbyte_http_request_duration_seconds_count"
    assert found[(count, ok)] == before.get((count, ok), 0) + 1
    assert found[(count, missing)] == before.get((count, missing), 0) + 1
    assert customer["id"] not in body
    assert "cus_does_not_exist" not in body and "cus_secretish" not in body
    assert tenant.msp_id not in body and "C-OBS-1" not in body
    unmatched = ("method", "GET"), ("route", "unmatched"), ("status_class", "4xx")
    assert found[(count, unmatched)] == before.get((count, unmatched), 0) + 1


def test_job_queue_depth_counts_the_pending_jobs_by_kind(
    runtime: Runtime, client: TestClient
) -> None:
    runtime.settings.metrics_token = TOKEN
    with runtime.uow() as uow:
        for n in range(3):
            uow.session.add(Job(kind="rate", key=f"rate:obs-{n}", payload={}))
        uow.session.add(Job(kind="collect", key="collect:obs", payload={}))
        uow.session.add(Job(kind="rate", key="rate:obs-done", payload={}, status="done"))
        uow.session.add(Job(kind="rate", key="rate:obs-run", payload={}, status="running"))
        uow.session.add(Job(kind="collect", key="collect:bad", payload={}, status="failed"))
        uow.commit()
    found = samples(client.get("/metrics", headers=SCRAPE).text)
    assert found[("billbyte_job_queue_depth", (("kind", "rate"),))] == 3
    assert found[("billbyte_job_queue_depth", (("kind", "collect"),))] == 1
    assert found[("billbyte_jobs_running", (("kind", "rate"),))] == 1
    assert found[("billbyte_jobs_failed", (("kind", "collect"),))] == 1
    assert ("billbyte_jobs_failed", (("kind", "rate"),)) not in found
    assert found[("billbyte_metrics_database_up", ())] == 1


T0 = datetime(2026, 11, 3, 8, 0, tzinfo=UTC)


def test_rating_lag_is_the_age_of_the_oldest_unfinished_rate_job(runtime: Runtime) -> None:
    with runtime.uow() as uow:
        uow.session.add(Job(kind="rate", key="rate:a", payload={}, created_at=T0))
        uow.session.add(
            Job(kind="rate", key="rate:b", payload={}, created_at=T0 + timedelta(minutes=5))
        )
        old_done = T0 - timedelta(days=3)
        uow.session.add(
            Job(kind="rate", key="rate:c", payload={}, created_at=old_done, status="done")
        )
        uow.session.add(Job(kind="collect", key="collect:z", payload={}, created_at=old_done))
        uow.commit()
    with runtime.uow(read_only=True) as uow:
        families = {f.name: f for f in database_metrics(uow.session, T0 + timedelta(seconds=90))}
    assert families["billbyte_rating_lag_seconds"].samples[0].value == 90


def test_rating_lag_is_zero_when_nothing_waits(runtime: Runtime) -> None:
    with runtime.uow(read_only=True) as uow:
        families = {f.name: f for f in database_metrics(uow.session, T0)}
    assert families["billbyte_rating_lag_seconds"].samples[0].value == 0


def test_partner_data_lag_is_the_largest_per_vendor(runtime: Runtime, tenant: Tenant) -> None:
    first = make_partner(tenant, "aws")
    second = make_partner(tenant, "aws", display_name="second aws")
    never = make_partner(tenant, "azure")
    google = make_partner(tenant, "gcp")
    with runtime.uow() as uow:
        for account, data_until, failures in (
            (first, "2026-11-03T07:00:00Z", 0),  # 1 h behind T0
            (second, "2026-11-01T08:00:00+00:00", 2),  # 48 h behind
            (never, None, 1),
            (google, "2026-11-03T07:59:00Z", 0),
        ):
            uow.session.add(
                PartnerSync(
                    msp_id=tenant.msp_id,
                    partner_account_id=account["id"],
                    data_until=data_until,
                    consecutive_failures=failures,
                )
            )
        uow.commit()
    with runtime.uow(read_only=True) as uow:
        families = {f.name: f for f in database_metrics(uow.session, T0)}
    lag = {
        s.labels["vendor"]: s.value for s in families["billbyte_partner_data_lag_seconds"].samples
    }
    assert lag == {"aws": 48 * 3600, "gcp": 60}
    failing = {
        s.labels["vendor"]: s.value for s in families["billbyte_partner_accounts_failing"].samples
    }
    assert failing == {"aws": 1, "azure": 1, "gcp": 0}


def test_webhook_delivery_failures_are_counted(
    runtime: Runtime, client: TestClient, tenant: Tenant
) -> None:
    runtime.settings.metrics_token = TOKEN
    before = samples(client.get("/metrics", headers=SCRAPE).text)
    key = ("billbyte_webhook_delivery_failures_total", (("final", "false"),))
    webhook_worker.DELIVERY_FAILURES.labels(final="false")  # present from zero
    start = before.get(key, 0.0)
    created = tenant.post(
        "/v1/webhook-endpoints", json={"url": "http://127.0.0.1:9/hook", "event_types": ["*"]}
    )
    assert created.status_code == 201, created.text
    make_customer(tenant, "C-HOOK")  # emits customer.created
    webhook_worker.deliver_due(runtime)  # port 9 refuses: a failed attempt
    after = samples(client.get("/metrics", headers=SCRAPE).text)
    assert after[key] == start + 1
    assert after[("billbyte_webhook_deliveries_retrying", ())] == 1
    assert after[("billbyte_webhook_deliveries_pending", ())] == 1
    assert after[("billbyte_webhook_deliveries_failed", ())] == 0


def test_metrics_still_answer_when_the_database_is_down(runtime: Runtime, tmp_path: object) -> None:
    dead = Runtime(
        settings=runtime.settings,
        engine=create_engine("postgresql+psycopg://postgres@127.0.0.1:1/test"),
        secret_key=runtime.secret_key,
    )
    dead.settings.metrics_token = TOKEN
    with TestClient(create_app(dead), raise_server_exceptions=False) as client:
        response = client.get("/metrics", headers=SCRAPE)
    assert response.status_code == 200
    found = samples(response.text)
    assert found[("billbyte_metrics_database_up", ())] == 0
    assert ("billbyte_job_queue_depth", (("kind", "rate"),)) not in found

"""Metrics read from the database when /metrics is scraped: they hold for the whole
installation (every API process and worker), where the process's own counters
(``kit.metrics.REGISTRY``) count only what this process did.

Each figure is one cheap aggregate query, through the owning feature's repository, in one
read-only unit of work. No label names a tenant: jobs by kind, partner accounts by vendor
(the lag is the *largest* lag of that vendor's accounts), everything else unlabelled.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session

from billbyte.connectors import repository as connectors
from billbyte.jobs import repository as jobs
from billbyte.jobs.follow_up import RATE
from billbyte.kit.clock import utcnow
from billbyte.runtime import Runtime
from billbyte.usage import repository as usage_repository
from billbyte.webhooks import repository as webhooks

log = logging.getLogger(__name__)


class DatabaseCollector(Collector):
    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "billbyte_metrics_database_up",
            "1 when this scrape read the database-derived metrics, 0 when it could not "
            "(they are then absent from this scrape).",
        )
        try:
            with self._runtime.uow(read_only=True) as uow:
                families = list(database_metrics(uow.session, utcnow()))
        except Exception:
            log.warning("metrics: the database could not be read", exc_info=True)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families


def database_metrics(session: Session, now: datetime) -> Iterator[Metric]:
    yield from _job_metrics(session, now)
    yield from _usage_metrics(session)
    yield from _partner_metrics(session, now)
    yield from _webhook_metrics(session)


def _job_metrics(session: Session, now: datetime) -> Iterator[Metric]:
    counts = jobs.counts_by_kind_and_status(session)
    for status, name, help_text in (
        ("pending", "billbyte_job_queue_depth", "Jobs waiting to run (due or not), by kind."),
        ("running", "billbyte_jobs_running", "Jobs a worker holds now, by kind."),
        (
            "failed",
            "billbyte_jobs_failed",
            "Jobs that failed for good (attempts exhausted or not retryable), by kind.",
        ),
    ):
        family = GaugeMetricFamily(name, help_text, labels=["kind"])
        for (kind, counted_status), count in sorted(counts.items()):
            if counted_status == status:
                family.add_metric([kind], count)
        yield family
    oldest = jobs.oldest_unfinished(session, RATE)
    yield GaugeMetricFamily(
        "billbyte_rating_lag_seconds",
        "How long the oldest change still waiting for a re-rating (an import, a rule or "
        "link change, new FX rates) has waited: age of the oldest pending or running rate "
        "job; 0 when rating is up to date.",
        value=_age(now, oldest),
    )


def _usage_metrics(session: Session) -> Iterator[Metric]:
    imports = CounterMetricFamily(
        "billbyte_usage_imports",
        "Usage imports recorded, by status (processing, completed, failed).",
        labels=["status"],
    )
    by_status, rows = usage_repository.import_totals(session)
    for status, count in sorted(by_status.items()):
        imports.add_metric([status], count)
    yield imports
    yield CounterMetricFamily(
        "billbyte_usage_rows_ingested",
        "Usage lines accepted by completed imports.",
        value=rows,
    )


def _partner_metrics(session: Session, now: datetime) -> Iterator[Metric]:
    lag = GaugeMetricFamily(
        "billbyte_partner_data_lag_seconds",
        "Age of the newest usage collected, for the active partner account of this vendor "
        "that is furthest behind (the largest lag; accounts never collected are left out).",
        labels=["vendor"],
    )
    failing = GaugeMetricFamily(
        "billbyte_partner_accounts_failing",
        "Active partner accounts whose last collection failed, by vendor.",
        labels=["vendor"],
    )
    largest: dict[str, float] = {}
    failures: dict[str, int] = {}
    for vendor, data_until, consecutive_failures in connectors.collection_states(session):
        failures[vendor] = failures.get(vendor, 0) + (1 if consecutive_failures > 0 else 0)
        newest = _parse_instant(data_until)
        if newest is not None:
            largest[vendor] = max(largest.get(vendor, 0.0), _age(now, newest))
    for vendor in sorted(largest):
        lag.add_metric([vendor], largest[vendor])
    for vendor in sorted(failures):
        failing.add_metric([vendor], failures[vendor])
    yield lag
    yield failing


def _webhook_metrics(session: Session) -> Iterator[Metric]:
    backlog = webhooks.delivery_backlog(session)
    yield GaugeMetricFamily(
        "billbyte_webhook_deliveries_pending",
        "Webhook deliveries still to send.",
        value=backlog["pending"],
    )
    yield GaugeMetricFamily(
        "billbyte_webhook_deliveries_retrying",
        "Pending webhook deliveries whose earlier attempts failed.",
        value=backlog["retrying"],
    )
    yield GaugeMetricFamily(
        "billbyte_webhook_deliveries_failed",
        "Webhook deliveries that failed for good (every attempt used).",
        value=backlog["failed"],
    )


def _age(now: datetime, then: datetime | None) -> float:
    return max(0.0, (now - then).total_seconds()) if then is not None else 0.0


def _parse_instant(value: str | None) -> datetime | None:
    """``data_until`` as the connectors store it (ISO 8601, possibly with ``Z``)."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None

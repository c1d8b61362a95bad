"""The process's Prometheus metrics: one registry that every measuring module adds to.

Counters and histograms here count what *this process* did (requests it answered, job and
webhook attempts its threads ran). Figures that hold for the whole installation (queue
depth, lag) are read from the database when /metrics is scraped
(``observability/collector.py``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

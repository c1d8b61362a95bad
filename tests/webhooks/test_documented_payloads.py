"""docs/webhooks.md shows the real payload of every event type, produced here.

One scenario emits every event type BillByte sends; each type's first event is normalised
(ids and times replaced by placeholders) and compared with the JSON block that follows
``<!-- example: <type> -->`` in the doc. Types no feature emits must say so in the doc.

To regenerate the doc after a deliberate payload change:
``BILLBYTE_WRITE_WEBHOOK_DOCS=1 pytest tests/webhooks/test_documented_payloads.py``
(then read the diff).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from billbyte.connectors import tasks, vendors
from billbyte.webhooks.schemas import EVENT_TYPES
from tests.conftest import Tenant
from tests.connectors.test_framework import MemoryVendor
from tests.invoicing.conftest import close
from tests.rating.factories import Scenario, row

DOC = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"
NOT_EMITTED = {"charges.updated", "test.ping"}
_ID = re.compile(r"\b([a-z]{2,4})_[0-9A-HJKMNP-TV-Z]{20,32}\b")
_TIME = re.compile(r"\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?")
_KEY = re.compile(r"\bbb_[0-9a-f]{12}\b")
_BLOCK = re.compile(r"<!-- example: (?P<type>[a-z_.]+) -->\n```json\n(?P<body>.*?)\n```", re.S)


def _normalised(data: Any) -> str:
    text = json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False)
    text = _ID.sub(lambda m: f"{m.group(1)}_01J...", text)
    text = _KEY.sub("bb_...", text)
    return _TIME.sub("2030-01-01T00:00:00Z", text)


@pytest.fixture
def backend() -> str:
    return "sqlite"  # payload shapes do not depend on the database


@pytest.fixture
def vendor(monkeypatch: pytest.MonkeyPatch) -> MemoryVendor:
    memory = MemoryVendor()
    monkeypatch.setattr(vendors, "CONNECTORS", {"aws": memory})
    monkeypatch.setattr(vendors, "_loaded", True)
    monkeypatch.setattr(tasks, "POLL_DELAY", 0.0)
    return memory


def _emit_every_type(tenant: Tenant, runtime: Any, tmp_path: Path) -> dict[str, dict[str, Any]]:
    s = Scenario(tenant, runtime, tmp_path)
    pa = tenant.post(
        "/v1/partner-accounts",
        json={"vendor": "aws", "display_name": "payer", "sandbox": True, "credentials": {}},
    ).json()["id"]
    s.accounts["aws"] = pa
    policy = tenant.client.put(
        "/v1/credit-policy",
        headers=tenant.headers,
        json={"thresholds": [80], "action": "suspend", "suspend_at": 80},
    )
    assert policy.status_code == 200, policy.text
    created = tenant.post(
        "/v1/customers",
        json={"external_id": "C-1", "name": "Acme GmbH", "currency": "USD", "vendors": ["aws"]},
    )
    assert created.status_code == 201, created.text
    customer = created.json()["id"]
    budget = tenant.post(
        f"/v1/customers/{customer}/budgets",
        json={"name": "Cloud", "amount": "100", "thresholds": [80]},
    )
    assert budget.status_code == 201, budget.text
    for _ in range(4):
        s.drain()
    account = tenant.get(f"/v1/customers/{customer}").json()["vendor_states"][0][
        "vendor_identifier"
    ]
    assert (
        tenant.patch(f"/v1/customers/{customer}", json={"credit_limit": "100"}).status_code == 200
    )
    s.upload([row("90.00", sub=account)])
    for _ in range(4):
        s.drain()  # rating → thresholds (credit, budget) → suspension → vendor → suspended
    assert tenant.get(f"/v1/customers/{customer}").json()["status"] == "suspended"
    assert tenant.post(f"/v1/customers/{customer}/resume", json={}).status_code == 202
    s.drain()
    run = close(runtime, tenant.msp_id, "2025-03")
    assert run.status == "completed", run
    first: dict[str, dict[str, Any]] = {}
    cursor = None
    while True:
        params = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        page = tenant.get("/v1/webhook-events", params=params).json()
        for event in page["data"]:
            first.setdefault(event["type"], event["payload"]["data"])
        cursor = page.get("next_cursor")
        if not cursor:
            return first


def test_docs_show_the_real_payload_of_every_event_type(
    tenant: Tenant, runtime: Any, vendor: MemoryVendor, tmp_path: Path
) -> None:
    emitted = _emit_every_type(tenant, runtime, tmp_path)
    assert set(emitted) == EVENT_TYPES - NOT_EMITTED
    examples = {t: _normalised(data) for t, data in sorted(emitted.items())}
    doc = DOC.read_text(encoding="utf-8")
    if os.environ.get("BILLBYTE_WRITE_WEBHOOK_DOCS") == "1":
        doc = _BLOCK.sub(
            lambda m: (
                f"<!-- example: {m['type']} -->\n```json\n{examples.get(m['type'], m['body'])}\n```"
            ),
            doc,
        )
        DOC.write_text(doc, encoding="utf-8")
    documented = {m["type"]: m["body"] for m in _BLOCK.finditer(doc)}
    assert set(documented) == set(examples), "every emitted type has exactly one example"
    for event_type, example in examples.items():
        assert documented[event_type] == example, f"docs/webhooks.md: {event_type} drifted"
    for event_type in NOT_EMITTED:
        assert f"`{event_type}` is not emitted" in doc

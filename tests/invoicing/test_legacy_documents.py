"""An invoice and credit note finalized before issue 12 (tests/data/legacy_invoice/README.md)
migrate to head and still download byte for byte; their JSON keeps every field."""

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from billbyte.app import create_app
from billbyte.db.engine import make_engine
from billbyte.db.migrate import upgrade
from billbyte.runtime import Runtime
from billbyte.settings import Settings

DATA = Path(__file__).parent.parent / "data" / "legacy_invoice"


def contains(new: Any, old: Any) -> bool:
    if isinstance(old, dict):
        return isinstance(new, dict) and all(
            k in new and contains(new[k], v) for k, v in old.items()
        )
    if isinstance(old, list):
        return isinstance(new, list) and len(new) == len(old) and all(map(contains, new, old))
    return bool(new == old)


@pytest.mark.parametrize("name", ["invoice", "credit_note"])
def test_legacy_document_unchanged(name: str, tmp_path: Path) -> None:
    ids = json.loads((DATA / "ids.json").read_text())
    path = tmp_path / "db.sqlite3"
    shutil.copy(DATA / "billbyte.sqlite3", path)
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    settings = Settings(var_dir=tmp_path / "var", secret_key="test-secret-key")
    runtime = Runtime(settings=settings, engine=engine, secret_key=settings.secret_key)
    headers = {"Authorization": f"Bearer {ids['api_key']}"}
    url = f"/v1/invoices/{ids[name]}"
    with TestClient(create_app(runtime), raise_server_exceptions=False) as client:
        for ext in ("csv", "pdf"):
            response = client.get(f"{url}.{ext}", headers=headers)
            assert response.status_code == 200, response.text
            assert response.content == (DATA / f"{name}.{ext}").read_bytes(), ext
        detail = client.get(url, headers=headers)
        assert detail.status_code == 200
        assert contains(detail.json(), json.loads((DATA / f"{name}.json").read_text()))
        # the issue-12 fields are added: an old document is a statement without taxes
        assert detail.json()["mode"] == "statement"
        assert detail.json()["taxes"] == [] and detail.json()["tax_total"] is None
        lines = client.get(f"{url}/lines", headers=headers)
        assert lines.status_code == 200
        assert contains(lines.json(), json.loads((DATA / f"{name}.lines.json").read_text()))
    engine.dispose()

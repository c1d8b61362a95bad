"""A document finalized before issue 12 (tests/data/legacy_invoice) still downloads the
exact PDF bytes it had then: version 1 goes to the fpdf2 renderer, not WeasyPrint."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from billbyte.app import create_app
from billbyte.db.engine import make_engine
from billbyte.db.migrate import upgrade
from billbyte.runtime import Runtime
from billbyte.settings import Settings

DATA = Path(__file__).parents[1] / "data" / "legacy_invoice"


@pytest.mark.parametrize("kind", ["invoice", "credit_note"])
def test_legacy_pdf_bytes_unchanged(tmp_path: Path, kind: str) -> None:
    db = tmp_path / "legacy.sqlite3"
    shutil.copy(DATA / "billbyte.sqlite3", db)
    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    ids = json.loads((DATA / "ids.json").read_text())
    settings = Settings(var_dir=tmp_path / "var", secret_key="test-secret-key")
    runtime = Runtime(settings=settings, engine=engine, secret_key=settings.secret_key)
    with TestClient(create_app(runtime)) as client:
        response = client.get(
            f"/v1/invoices/{ids[kind]}.pdf",
            headers={"Authorization": f"Bearer {ids['api_key']}"},
        )
    engine.dispose()
    assert response.status_code == 200, response.text
    assert response.content == (DATA / f"{kind}.pdf").read_bytes()

"""The API document is a contract with every BSS integration: a refactor must not move it.

``openapi.snapshot.json`` was written before the architecture refactor of issue 10. A change
to the API is made on purpose: regenerate the file with
``.venv/bin/python tests/api/test_openapi_snapshot.py`` and name the difference in the commit.
"""

from __future__ import annotations

import difflib
import json
import sys
from pathlib import Path

from fastapi.testclient import TestClient

SNAPSHOT = Path(__file__).with_name("openapi.snapshot.json")


def _pretty(document: object) -> str:
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def test_the_api_document_matches_the_committed_snapshot(client: TestClient) -> None:
    current = _pretty(client.get("/openapi.json").json())
    expected = SNAPSHOT.read_text()
    if current != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True),
                current.splitlines(keepends=True),
                "openapi.snapshot.json",
                "/openapi.json",
                n=2,
            )
        )
        raise AssertionError(f"/openapi.json changed:\n{diff[:6000]}")


if __name__ == "__main__":  # regenerate on purpose, never from the suite
    from billbyte.app import create_app

    document = create_app().openapi()
    SNAPSHOT.write_text(_pretty(document))
    sys.stdout.write(f"wrote {SNAPSHOT}\n")

"""``billbyte invoices close`` for every MSP: an invoice-mode MSP whose billing profile is
incomplete is refused (one line, exit 1) and the other MSPs are closed all the same."""

from __future__ import annotations

import json

from tests.cli.conftest import Cli


def test_one_incomplete_msp_does_not_keep_the_others_from_closing(cli: Cli) -> None:
    ready = cli.json("msp", "create", "--name", "Alpha")
    incomplete = cli.json("msp", "create", "--name", "Beta")
    with cli.api() as api:
        put = api.put(
            "/v1/invoice-settings",
            headers={"Authorization": f"Bearer {incomplete['api_key']}"},
            json={"mode": "invoice"},
        )
        assert put.status_code == 200, put.text

    result = cli.run("invoices", "close", "--period", "2026-09", "--force", "--json")
    assert result.exit_code == 1, (result.stdout, result.stderr)
    out = json.loads(result.stdout)
    assert [run["status"] for run in out["data"]] == ["completed"]
    [refusal] = out["refused"]
    assert (refusal["msp_id"], refusal["code"]) == (incomplete["id"], "invoice_incomplete")
    assert "seller.tax_id" in refusal["detail"]
    assert f"error: {incomplete['id']}: " in result.stderr and "Traceback" not in result.stderr
    assert ready["id"] not in result.stderr

    alone = cli.run("invoices", "close", "--period", "2026-09", "--msp", incomplete["id"])
    assert alone.exit_code == 1 and "seller.tax_id" in alone.stderr
    assert alone.stderr.count("\n") == 1

"""Issue #16 finding 6: a CUR manifest uploaded with its report parts expands as on the CLI.

Expected totals are summed here from the raw part with csv + Decimal.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from tests.conftest import Tenant
from tests.usage.conftest import DATA, read_rows, sum_by

AWS = DATA / "aws"
MANIFEST = AWS / "koku-local-Manifest.json"
PART = AWS / "koku-local-1.csv.gz"


def _account(tenant: Tenant) -> str:
    response = tenant.post(
        "/v1/partner-accounts", json={"vendor": "aws", "display_name": "AWS payer"}
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _upload(tenant: Tenant, account: str, *paths: Path):  # type: ignore[no-untyped-def]
    files = [("file", (path.name, path.read_bytes())) for path in paths]
    return tenant.post("/v1/usage/imports", data={"partner_account_id": account}, files=files)


def test_a_manifest_uploaded_with_its_part_imports_the_part(tenant: Tenant) -> None:
    account = _account(tenant)
    rows = read_rows(PART)
    expected = sum_by(rows, "lineItem/CurrencyCode", "lineItem/UnblendedCost")

    response = _upload(tenant, account, MANIFEST, PART)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["rows_accepted"] == len(rows)
    assert [f["name"] for f in body["files"]] == [PART.name]
    assert {cur: Decimal(t["billed_cost"]) for cur, t in body["totals"].items()} == expected

    # Parts first, manifest second: the same one delivery, so nothing changes.
    again = _upload(tenant, account, PART, MANIFEST)
    assert again.status_code == 201, again.text
    assert again.json()["outcome"] == "unchanged"


def test_a_manifest_uploaded_without_its_part_is_refused_naming_it(tenant: Tenant) -> None:
    account = _account(tenant)
    response = _upload(tenant, account, MANIFEST)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == "manifest_file_missing"
    assert PART.name in problem["detail"]

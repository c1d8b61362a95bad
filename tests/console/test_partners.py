"""The console's partner pages: collection status as the API reports it, a vendor file
uploaded through the API's bounded upload, and the import's reconciliation (the file's
totals, computed by the generator that wrote it, next to the stored totals)."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from billbyte.app import create_app
from billbyte.connectors import service as connectors
from billbyte.kit.clock import utcnow
from billbyte.partners.models import PartnerAccount
from billbyte.runtime import Runtime
from billbyte.usage.models import UsageImport
from tests.api.factories import make_partner
from tests.conftest import Tenant
from tests.usage.generate import write_focus
from tests.web.people import add_staff, csrf_token, signed_in_client


def console(runtime: Runtime, msp_id: str, role: str = "admin") -> TestClient:
    client = TestClient(create_app(runtime), raise_server_exceptions=False)
    return signed_in_client(client, "console", add_staff(runtime, msp_id, role))


def imports(runtime: Runtime) -> int:
    with runtime.uow(read_only=True) as uow:
        return int(uow.session.scalar(select(func.count()).select_from(UsageImport)) or 0)


def upload(staff: TestClient, account: str, path: Path, token: str, **extra: str) -> object:
    with path.open("rb") as handle:
        return staff.post(
            f"/console/partners/{account}/upload",
            data={"csrf_token": token, **extra},
            files={"file": (path.name, handle, "text/csv")},
            follow_redirects=False,
        )


def test_the_list_shows_sync_status_lag_and_last_error_as_the_api(
    runtime: Runtime, tenant: Tenant
) -> None:
    account = make_partner(tenant, display_name="AWS payer")["id"]
    quiet = make_partner(tenant, vendor="azure", display_name="Azure CSP")["id"]
    with runtime.uow() as uow:
        row = uow.session.get(PartnerAccount, account)
        assert row is not None
        sync = connectors.sync_for(uow.session, row)
        sync.last_success_at = utcnow()
        sync.data_until = "2026-10-28T00:00:00Z"
        sync.last_error = "AccessDenied: the role cannot read the bucket"
        sync.consecutive_failures = 2
        uow.commit()
    page = console(runtime, tenant.msp_id, "helpdesk").get("/console/partners")
    assert page.status_code == 200
    api = tenant.get(f"/v1/partner-accounts/{account}/sync").json()
    assert "AccessDenied: the role cannot read the bucket" in page.text
    assert api["last_error"] == "AccessDenied: the role cannot read the bucket"
    assert "2026-10-28T00:00:00Z" in page.text and "2 failures in a row" in page.text
    lag = re.search(rf'data-partner="{account}".*?data-lag="(\d+)"', page.text, re.S)
    assert lag and abs(int(lag.group(1)) - api["data_lag_seconds"]) < 60
    assert re.search(rf'data-partner="{quiet}".*?data-lag=""', page.text, re.S)
    assert "AWS payer" in page.text and "Azure CSP" in page.text


def test_upload_imports_the_file_and_shows_the_reconciliation(
    runtime: Runtime, tenant: Tenant, tmp_path: Path
) -> None:
    account = make_partner(tenant)["id"]
    path = tmp_path / "focus.csv"
    expected = write_focus(path, 400, seed=7)
    staff = console(runtime, tenant.msp_id, "billing")
    form = staff.get(f"/console/partners/{account}/upload")
    assert form.status_code == 200
    assert 'enctype="multipart/form-data"' in form.text and "<progress" in form.text
    script = re.search(r'<script src="(/console/partners/static/upload\.js)"', form.text)
    assert script and 'upload.addEventListener("progress"' in staff.get(script.group(1)).text
    done = upload(staff, account, path, csrf_token(form.text))
    assert done.status_code == 303, getattr(done, "text", "")
    location = done.headers["location"]
    import_id = location.rsplit("/", 1)[1]
    page = staff.get(location)
    assert page.status_code == 200
    api = tenant.get(f"/v1/usage/imports/{import_id}").json()
    assert api["status"] == "completed" and api["rows_accepted"] == 400
    for field, column in (("billed_cost", "BilledCost"), ("list_cost", "ListCost")):
        found = re.search(
            rf'data-currency="USD" data-field="{field}">.*?data-file="([^"]+)".*?'
            rf'data-stored="([^"]+)"',
            page.text,
            re.S,
        )
        assert found, field
        assert Decimal(found.group(1)) == expected[column] == Decimal(api["totals"]["USD"][field])
        assert Decimal(found.group(2)) == expected[column]
    assert "status-error" not in page.text  # every figure matches
    assert f"/imports/{import_id}" in staff.get(f"/console/partners/{account}/upload").text
    # the summary of the stored usage says the same
    summary = tenant.get(
        "/v1/usage/summary", params={"period": "2026-10", "partner_account_id": account}
    ).json()
    assert Decimal(summary["totals"]["USD"]["billed_cost"]) == expected["BilledCost"]


def test_empty_missing_and_oversized_uploads_are_refused_and_write_nothing(
    runtime: Runtime, tenant: Tenant, tmp_path: Path
) -> None:
    account = make_partner(tenant)["id"]
    staff = console(runtime, tenant.msp_id)
    token = csrf_token(staff.get(f"/console/partners/{account}/upload").text)
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    refused = upload(staff, account, empty, token)
    assert refused.status_code == 422 and "empty" in getattr(refused, "text", "")
    none = staff.post(f"/console/partners/{account}/upload", data={"csrf_token": token})
    assert none.status_code == 422
    big = tmp_path / "big.csv"
    write_focus(big, 200)
    runtime.settings.usage_upload_max_bytes = 2000
    too_large = upload(staff, account, big, token)
    assert too_large.status_code == 413
    assert "text/html" in too_large.headers["content-type"]
    garbage = tmp_path / "garbage.csv"
    garbage.write_text("not,a,vendor\nfile,at,all\n")
    runtime.settings.usage_upload_max_bytes = 10**9
    rejected = upload(staff, account, garbage, token)
    assert rejected.status_code == 422  # the API's refusal of an unknown format
    assert imports(runtime) <= 1  # only the rejected file is recorded, as the API does
    with runtime.uow(read_only=True) as uow:
        statuses = set(uow.session.scalars(select(UsageImport.status)))
    assert statuses <= {"rejected"}
    missing_csrf = staff.post(
        f"/console/partners/{account}/upload",
        files={"file": ("a.csv", b"x", "text/csv")},
    )
    assert missing_csrf.status_code == 403


def test_help_desk_reads_but_cannot_upload(
    runtime: Runtime, tenant: Tenant, tmp_path: Path
) -> None:
    account = make_partner(tenant)["id"]
    path = tmp_path / "focus.csv"
    write_focus(path, 10)
    desk = console(runtime, tenant.msp_id, "helpdesk")
    assert desk.get("/console/partners").status_code == 200
    form = desk.get(f"/console/partners/{account}/upload")
    assert form.status_code == 200
    refused = upload(desk, account, path, csrf_token(form.text))
    assert refused.status_code == 403 and imports(runtime) == 0


@pytest.mark.parametrize("role", ["admin", "helpdesk"])
def test_another_msps_partner_account_and_import_are_404(
    runtime: Runtime, tenant: Tenant, other_tenant: Tenant, tmp_path: Path, role: str
) -> None:
    theirs = make_partner(other_tenant)["id"]
    path = tmp_path / "focus.csv"
    write_focus(path, 10)
    with path.open("rb") as handle:
        their_import = other_tenant.post(
            "/v1/usage/imports",
            data={"partner_account_id": theirs},
            files={"file": ("focus.csv", handle, "text/csv")},
        ).json()["id"]
    mine = make_partner(tenant)["id"]
    staff = console(runtime, tenant.msp_id, role)
    token = csrf_token(staff.get("/console/partners").text)
    assert staff.get(f"/console/partners/{theirs}/upload").status_code == 404
    assert staff.get(f"/console/partners/{theirs}/imports/{their_import}").status_code == 404
    assert staff.get(f"/console/partners/{mine}/imports/{their_import}").status_code == 404
    assert upload(staff, theirs, path, token).status_code == 404
    assert imports(runtime) == 1  # theirs only
    assert theirs not in staff.get("/console/partners").text

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, UploadFile, status

from billbyte.api.deps import DEFAULT_PAGE, Cursor, Limit, PeriodQuery, RuntimeDep, Subject, Uow
from billbyte.api.responses import READ, READ_ONE, WRITE
from billbyte.kit.pagination import ListResponse
from billbyte.usage import service
from billbyte.usage.schemas import UsageImportOut, UsageSummaryOut

router = APIRouter(prefix="/v1/usage", tags=["usage"])

GroupBy = Literal["customer", "sub_account", "service", "charge_category", "provider"]


@router.post(
    "/imports",
    summary="Import vendor usage files",
    status_code=status.HTTP_201_CREATED,
    response_model=UsageImportOut,
    responses=WRITE,
)
def create_import(
    subject: Subject,
    runtime: RuntimeDep,
    file: Annotated[
        list[UploadFile], File(description="One file, or a CUR manifest and its report parts.")
    ],
    partner_account_id: Annotated[str, Form()],
    format: Annotated[str | None, Form(description="Override format detection.")] = None,
    report: Annotated[
        str | None,
        Form(
            description="The vendor's report/export name, when one billing account is exported "
            "in several files (see docs/usage.md)."
        ),
    ] = None,
) -> UsageImportOut:
    uploads = runtime.settings.usage_store_dir / "_uploads"
    uploads.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="upload-", dir=uploads))
    try:
        paths = []
        for index, upload in enumerate(file):
            name = Path(upload.filename or f"upload-{index}").name
            target = work / f"{index}-{name}"
            with target.open("wb") as out:
                shutil.copyfileobj(upload.file, out, length=1024 * 1024)
            paths.append((target, name))
        item = service.import_files(
            runtime,
            subject,
            partner_account_id,
            paths,
            requested_format=format or None,
            report=report or None,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return UsageImportOut.model_validate(item)


@router.get(
    "/imports",
    summary="List usage imports (oldest first)",
    response_model=ListResponse[UsageImportOut],
    responses=READ,
)
def list_imports(
    subject: Subject,
    uow: Uow,
    partner_account_id: str | None = None,
    status: str | None = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_PAGE,
) -> ListResponse[UsageImportOut]:
    page = service.list_imports(
        uow.session,
        subject,
        partner_account_id=partner_account_id,
        status=status,
        cursor=cursor,
        limit=limit,
    )
    return ListResponse.of(page, UsageImportOut.model_validate)


@router.get(
    "/imports/{import_id}",
    summary="Get a usage import",
    response_model=UsageImportOut,
    responses=READ_ONE,
)
def get_import(import_id: str, subject: Subject, uow: Uow) -> UsageImportOut:
    return UsageImportOut.model_validate(service.get_import(uow.session, subject, import_id))


@router.get(
    "/summary",
    summary="Exact usage totals for a billing period",
    response_model=UsageSummaryOut,
    responses=READ_ONE,
)
def usage_summary(
    subject: Subject,
    uow: Uow,
    runtime: RuntimeDep,
    period: PeriodQuery,
    partner_account_id: str | None = None,
    group_by: GroupBy = "customer",
) -> UsageSummaryOut:
    return UsageSummaryOut.model_validate(
        service.summary(
            runtime,
            uow.session,
            subject,
            period=period,
            partner_account_id=partner_account_id,
            group_by=group_by,
        )
    )

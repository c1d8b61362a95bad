from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Request, Response, UploadFile, status
from fastapi.routing import APIRoute
from starlette.types import Message

from billbyte.api.deps import DEFAULT_PAGE, Cursor, Limit, PeriodQuery, RuntimeDep, Uow
from billbyte.api.responses import READ, READ_ONE, WRITE
from billbyte.auth.deps import Subject
from billbyte.kit.pagination import ListResponse
from billbyte.usage import service
from billbyte.usage.limits import UploadTooLarge, mib
from billbyte.usage.schemas import UsageImportOut, UsageSummaryOut


class BoundedBodyRoute(APIRoute):
    """Refuses a request body larger than ``usage_upload_max_bytes`` while it arrives.

    The multipart parser spools every file to disk before the endpoint runs, so the limit
    has to sit in front of it: a declared Content-Length over the limit is refused before a
    byte is read, and an undeclared (chunked) body at the first byte past the limit.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def bounded(request: Request) -> Response:
            if request.method != "POST":
                return await handler(request)
            limit = request.app.state.runtime.settings.usage_upload_max_bytes
            too_large = UploadTooLarge(
                f"The upload is larger than {mib(limit)} (usage_upload_max_bytes); split the "
                "export, or import it with the CLI from the server's disk.",
                limit=limit,
            )
            declared = request.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                raise too_large
            received = 0
            exceeded = False

            async def counting_receive() -> Message:
                nonlocal received, exceeded
                message = await request.receive()
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise too_large
                return message

            try:
                return await handler(Request(request.scope, counting_receive))
            except Exception:
                # The form parser wraps what receive raises in a 400; the size is the cause.
                if exceeded:
                    raise too_large from None
                raise

        return bounded


router = APIRouter(prefix="/v1/usage", tags=["usage"], route_class=BoundedBodyRoute)

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
    uploads = runtime.settings.usage_store_dir / service.UPLOADS
    uploads.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="upload-", dir=uploads))
    try:
        paths = []
        for index, upload in enumerate(file):
            name = Path(upload.filename or "").name
            if name in ("", ".", ".."):
                name = f"upload-{index}"
            # Under its own name, so that a CUR manifest finds the parts uploaded with it;
            # a second file of the same name goes into a folder of its own.
            target = work / name
            if target.exists():
                target = work / str(index) / name
                target.parent.mkdir()
            with target.open("wb") as out:
                shutil.copyfileobj(upload.file, out, length=1024 * 1024)
            paths.append((target, name))
        # The same expansion as the CLI's: a manifest stands for the parts it lists.
        paths = service.expand_manifests(paths)
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

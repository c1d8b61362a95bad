from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from billbyte.api.deps import DEFAULT_PAGE, Cursor, Limit, Uow
from billbyte.api.responses import CONFLICT, READ, READ_ONE, WRITE
from billbyte.auth.deps import Subject
from billbyte.kit.pagination import ListResponse
from billbyte.tenant_jobs import service
from billbyte.tenant_jobs.schemas import JobOut, JobStatus

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


@router.get(
    "",
    summary="List the MSP's background jobs in one status (default: failed, the dead letters)",
    response_model=ListResponse[JobOut],
    responses=READ,
)
def list_jobs(
    subject: Subject,
    uow: Uow,
    status: Annotated[JobStatus, Query(description="pending, running, done or failed.")] = (
        "failed"
    ),
    cursor: Cursor = None,
    limit: Limit = DEFAULT_PAGE,
) -> ListResponse[JobOut]:
    page = service.list_jobs(uow.session, subject, status, cursor, limit)
    return ListResponse.of(page, JobOut.model_validate)


@router.get("/{job_id}", summary="Get a job", response_model=JobOut, responses=READ_ONE)
def get_job(job_id: str, subject: Subject, uow: Uow) -> JobOut:
    return JobOut.model_validate(service.get_job(uow.session, subject, job_id))


@router.post(
    "/{job_id}/retry",
    summary="Retry a failed job (admin; a job not failed is returned unchanged)",
    response_model=JobOut,
    responses={**WRITE, **CONFLICT},
)
def retry_job(job_id: str, subject: Subject, uow: Uow) -> JobOut:
    job = service.retry(uow.session, subject, job_id)
    uow.commit()
    return JobOut.model_validate(job)

"""Every caller's operations on an MSP's jobs: scoped to the subject's MSP (another MSP's
job, or the installation's own, is not found), readable by every role, retried by an admin
alone, each retry in the audit log."""

from __future__ import annotations

from sqlalchemy.orm import Session

from billbyte.audit.service import record
from billbyte.auth.subject import AuthSubject
from billbyte.jobs import service as jobs
from billbyte.jobs.models import Job
from billbyte.kit.pagination import Page


def list_jobs(
    session: Session, subject: AuthSubject, status: str, cursor: str | None, limit: int
) -> Page[Job]:
    return jobs.list_msp_jobs(session, subject.msp_id, status, cursor, limit)


def get_job(session: Session, subject: AuthSubject, job_id: str) -> Job:
    return jobs.get_msp_job(session, subject.msp_id, job_id)


def retry(session: Session, subject: AuthSubject, job_id: str) -> Job:
    """Queue a failed job again (admin). Idempotent: a job already pending, running or done
    is returned as it is, and only the retry that changed it is audited."""
    subject.require_admin()
    job = jobs.get_msp_job(session, subject.msp_id, job_id, for_update=True)
    before = {"status": job.status, "attempts": job.attempts, "last_error": job.last_error}
    if jobs.retry_failed(session, job):
        record(
            session,
            subject,
            "job.retried",
            "job",
            job.id,
            before=before,
            after={"status": job.status, "attempts": job.attempts},
        )
    return job

"""The background job behind ``POST /v1/invoice-runs``: a retried job resumes its run."""

from __future__ import annotations

from typing import Any

from billbyte.invoicing import runs
from billbyte.jobs.service import handler
from billbyte.runtime import Runtime


@handler(runs.RUN_JOB)
def _invoice_run_job(runtime: Runtime, payload: dict[str, Any]) -> None:
    runs.execute_run(runtime, payload["run_id"])

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

JobStatus = Literal["pending", "running", "done", "failed"]


class JobOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    object: Literal["job"] = "job"
    kind: str = Field(description="What the job does: rate, collect, provision, invoice_run, …")
    status: str = Field(
        description="pending, running, done, failed (a dead letter: retried no more) or "
        "superseded (another job with the same work ran instead)."
    )
    payload: dict[str, Any] = Field(description="The ids of what the job works on.")
    attempts: int = Field(description="Attempts so far (8 at most before it fails).")
    last_error: str | None = Field(description="The error of the last failed attempt.")
    run_after: datetime = Field(description="Not run before this time (retry backoff).")
    created_at: datetime
    finished_at: datetime | None

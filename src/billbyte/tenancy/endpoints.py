from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field

from billbyte.api.deps import Uow
from billbyte.api.responses import FORBIDDEN, READ, WRITE
from billbyte.auth.deps import Subject
from billbyte.auth.roles import Role
from billbyte.kit.pagination import ListResponse
from billbyte.tenancy import service

router = APIRouter(prefix="/v1/api-keys", tags=["api keys"])


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    role: Role


class ApiKeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    object: str = "api_key"
    name: str
    role: Role
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyIssued(ApiKeyOut):
    secret: str = Field(description="The full key. Shown once; store it now.")


@router.post(
    "",
    summary="Issue an API key (admin)",
    status_code=status.HTTP_201_CREATED,
    response_model=ApiKeyIssued,
    responses=WRITE,
)
def create_api_key(body: ApiKeyCreate, subject: Subject, uow: Uow) -> ApiKeyIssued:
    subject.require_admin()
    issued = service.issue_api_key(uow.session, subject, name=body.name, role=body.role.value)
    uow.commit()
    return ApiKeyIssued(**ApiKeyOut.model_validate(issued.key).model_dump(), secret=issued.secret)


@router.get(
    "",
    summary="List API keys (admin)",
    response_model=ListResponse[ApiKeyOut],
    responses={**READ, **FORBIDDEN},
)
def list_api_keys(subject: Subject, uow: Uow) -> ListResponse[ApiKeyOut]:
    subject.require_admin()
    return ListResponse(
        data=[
            ApiKeyOut.model_validate(k) for k in service.list_api_keys(uow.session, subject.msp_id)
        ]
    )


@router.post(
    "/{api_key_id}/revoke",
    summary="Revoke an API key (admin)",
    response_model=ApiKeyOut,
    responses=WRITE,
)
def revoke_api_key(api_key_id: str, subject: Subject, uow: Uow) -> ApiKeyOut:
    subject.require_admin()
    key = service.revoke_api_key(uow.session, subject, api_key_id)
    uow.commit()
    return ApiKeyOut.model_validate(key)

"""The FastAPI dependency that authenticates a request: ``Subject`` is the caller."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import sessionmaker

from billbyte.api.deps import READ_METHODS, get_runtime
from billbyte.api.ratelimit import client_ip, rate_limits_of
from billbyte.auth.subject import AuthSubject, authenticate
from billbyte.db.engine import NO_WAIT
from billbyte.kit.errors import Unauthenticated
from billbyte.runtime import Runtime

log = logging.getLogger(__name__)
_bearer = HTTPBearer(auto_error=False, description="An MSP API key: `bb_<prefix>_<secret>`.")


def get_subject(
    request: Request,
    runtime: Annotated[Runtime, Depends(get_runtime)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> AuthSubject:
    token = credentials.credentials if credentials else None
    try:
        if request.method not in READ_METHODS:
            # Authentication commits on its own so that last_used_at is kept even for reads.
            with runtime.uow() as uow:
                subject = authenticate(uow.session, token)
                uow.commit()
            return subject
        with runtime.uow(read_only=True) as uow:
            subject = authenticate(uow.session, token)
            stale_last_use = bool(uow.session.dirty)
    except Unauthenticated:
        # A presented but wrong key counts towards the per-IP failed-authentication limit
        # (billbyte.api.ratelimit); a request without any key is not a guess.
        limits = rate_limits_of(request)
        if credentials is not None and limits is not None:
            limits.record_failed_authentication(client_ip(request.scope))
        raise
    if stale_last_use:
        _record_last_use(runtime, token)
    return subject


def _record_last_use(runtime: Runtime, token: str | None) -> None:
    """A read's last_used_at is bookkeeping: written if the write lock is free right now,
    skipped (until the next read) rather than making the read wait for a writer."""
    factory = sessionmaker(bind=runtime.engine.execution_options(**{NO_WAIT: True}))
    try:
        with factory() as session:
            authenticate(session, token)
            session.commit()
    except OperationalError as exc:
        log.debug("last_used_at not recorded (database busy): %s", exc)


Subject = Annotated[AuthSubject, Depends(get_subject)]

"""An MSP's exchange-rate policy: base currency for cross rates, which day's rate a charge
takes (charge day or period close), and how stale a rate may be."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from billbyte.audit.service import record
from billbyte.auth.subject import AuthSubject
from billbyte.fx.models import FxPolicy
from billbyte.fx.schemas import FxPolicyIn, PolicyMode
from billbyte.jobs import follow_up


@dataclass(frozen=True)
class Policy:
    base_currency: str = "EUR"
    mode: str = PolicyMode.CHARGE_DAY.value
    max_staleness_days: int = 7
    updated_at: datetime | None = None


DEFAULT_POLICY = Policy()


def policy_for(session: Session, msp_id: str) -> Policy:
    row = session.scalar(select(FxPolicy).where(FxPolicy.msp_id == msp_id))
    if row is None:
        return DEFAULT_POLICY
    return Policy(row.base_currency, row.mode, row.max_staleness_days, row.updated_at)


def get_policy(session: Session, subject: AuthSubject) -> Policy:
    return policy_for(session, subject.msp_id)


def _policy_snapshot(policy: Policy) -> dict[str, Any]:
    return {
        "base_currency": policy.base_currency,
        "mode": policy.mode,
        "max_staleness_days": policy.max_staleness_days,
    }


def set_policy(session: Session, subject: AuthSubject, data: FxPolicyIn) -> Policy:
    subject.require_write()
    before = policy_for(session, subject.msp_id)
    row = session.scalar(select(FxPolicy).where(FxPolicy.msp_id == subject.msp_id))
    if row is None:
        row = FxPolicy(msp_id=subject.msp_id)
        try:
            with session.begin_nested():
                session.add(row)
                _apply_policy(row, data)
                session.flush()
        except IntegrityError:  # created concurrently: update that one
            row = session.scalars(select(FxPolicy).where(FxPolicy.msp_id == subject.msp_id)).one()
    _apply_policy(row, data)
    session.flush()
    after = policy_for(session, subject.msp_id)
    if _policy_snapshot(after) != _policy_snapshot(before) or before.updated_at is None:
        record(
            session,
            subject,
            "fx_policy.updated",
            "fx_policy",
            row.id,
            before=_policy_snapshot(before) if before.updated_at is not None else None,
            after=_policy_snapshot(after),
        )
    if _policy_snapshot(after) != _policy_snapshot(before):
        follow_up.fx_changed(session, subject.msp_id)  # open periods convert differently
    return after


def _apply_policy(row: FxPolicy, data: FxPolicyIn) -> None:
    row.base_currency = data.base_currency
    row.mode = data.mode.value
    row.max_staleness_days = data.max_staleness_days

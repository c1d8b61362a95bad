"""FX test builders and helpers. Expected values are computed here, independently of billbyte.fx:
exact fractions and integer half-even rounding, never the code under test."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

from sqlalchemy import text

from billbyte.auth.roles import Role
from billbyte.auth.subject import AuthSubject
from billbyte.runtime import Runtime
from billbyte.tenancy import service as tenancy
from tests.conftest import Tenant

DATA = Path(__file__).resolve().parent.parent / "data" / "fx"
PROBLEM_JSON = "application/problem+json"
QUANTUM = Fraction(1, 10**18)


def put(tenant: Tenant, url: str, body: Any, key: str | None = None) -> Any:
    return tenant.client.put(
        url, json=body, headers={"Authorization": f"Bearer {key or tenant.key}"}
    )


def put_rates(tenant: Tenant, *rates: tuple[str, str, str, str], **extra: Any) -> dict[str, Any]:
    body = {"rates": [{"base": b, "quote": q, "date": d, "rate": r} for b, q, d, r in rates]}
    response = put(tenant, "/v1/fx-rates", {**body, **extra})
    assert response.status_code == 200, response.text
    return dict(response.json())


def set_policy(tenant: Tenant, **policy: Any) -> dict[str, Any]:
    response = put(tenant, "/v1/fx-policy", policy)
    assert response.status_code == 200, response.text
    return dict(response.json())


def assert_problem(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    problem = dict(response.json())
    assert problem["status"] == status and problem["detail"]
    if code is not None:
        assert problem["code"] == code, problem
    return problem


def half_even_18(value: Fraction) -> Decimal:
    """Round an exact fraction to 18 decimal places, ties to even, with integers only."""
    scaled = value / QUANTUM
    floor = scaled.numerator // scaled.denominator
    remainder = scaled - floor
    if remainder > Fraction(1, 2) or (remainder == Fraction(1, 2) and floor % 2 == 1):
        floor += 1
    return Decimal(floor).scaleb(-18)


def exact(value: str | Decimal) -> Fraction:
    return Fraction(Decimal(value))


def rows_of(runtime: Runtime, msp_id: str) -> list[tuple[Any, ...]]:
    """Every stored rate of an MSP with every column, read with plain SQL."""
    with runtime.engine.connect() as connection:
        result = connection.execute(
            text(
                "SELECT id, base, quote, rate_date, rate, source, created_at, updated_at "
                "FROM fx_rates WHERE msp_id = :msp ORDER BY base, quote, rate_date"
            ),
            {"msp": msp_id},
        )
        return [
            (r[0], r[1], r[2], str(r[3]), Decimal(str(r[4])), r[5], str(r[6]), str(r[7]))
            for r in result
        ]


@dataclass
class Msp:
    runtime: Runtime
    subject: AuthSubject

    @property
    def msp_id(self) -> str:
        return self.subject.msp_id


def new_msp(runtime: Runtime, name: str = "FX MSP") -> Msp:
    with runtime.uow() as uow:
        msp, _ = tenancy.create_msp(uow.session, name)
        uow.commit()
    return Msp(runtime, AuthSubject(msp_id=msp.id, actor="test", role=Role.ADMIN))


D = date.fromisoformat

"""Tax rates: ``/v1/tax-rates`` (read: every role; write: admin and billing)."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from billbyte.api.deps import Uow
from billbyte.api.responses import CONFLICT, READ, READ_ONE, WRITE
from billbyte.auth.deps import Subject
from billbyte.kit.pagination import ListResponse
from billbyte.taxes import service
from billbyte.taxes.schemas import TaxRateIn, TaxRateOut, TaxRatePatch

router = APIRouter(prefix="/v1/tax-rates", tags=["taxes"])


@router.get(
    "", summary="List the MSP's tax rates", response_model=ListResponse[TaxRateOut], responses=READ
)
def list_tax_rates(subject: Subject, uow: Uow) -> ListResponse[TaxRateOut]:
    rows = service.list_rates(uow.session, subject)
    return ListResponse(data=[TaxRateOut.model_validate(r) for r in rows])


@router.post(
    "",
    summary="Add a tax rate (admin, billing)",
    status_code=status.HTTP_201_CREATED,
    response_model=TaxRateOut,
    responses={**WRITE, **CONFLICT},
)
def create_tax_rate(body: TaxRateIn, subject: Subject, uow: Uow) -> TaxRateOut:
    row = service.create_rate(uow.session, subject, body.model_dump())
    uow.commit()
    return TaxRateOut.model_validate(row)


@router.get(
    "/{tax_rate_id}", summary="Get a tax rate", response_model=TaxRateOut, responses=READ_ONE
)
def get_tax_rate(tax_rate_id: str, subject: Subject, uow: Uow) -> TaxRateOut:
    return TaxRateOut.model_validate(service.get_rate(uow.session, subject, tax_rate_id))


@router.patch(
    "/{tax_rate_id}",
    summary="Change a tax rate (admin, billing)",
    response_model=TaxRateOut,
    responses={**WRITE, **CONFLICT},
)
def update_tax_rate(tax_rate_id: str, body: TaxRatePatch, subject: Subject, uow: Uow) -> TaxRateOut:
    row = service.update_rate(
        uow.session, subject, tax_rate_id, body.model_dump(exclude_unset=True)
    )
    uow.commit()
    return TaxRateOut.model_validate(row)


@router.delete(
    "/{tax_rate_id}",
    summary="Delete a tax rate (admin, billing)",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=WRITE,
)
def delete_tax_rate(tax_rate_id: str, subject: Subject, uow: Uow) -> Response:
    service.delete_rate(uow.session, subject, tax_rate_id)
    uow.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)

"""Catalogue offers and customers' licence subscriptions."""

from __future__ import annotations

from fastapi import APIRouter, status

from billbyte.api.deps import DEFAULT_PAGE, Cursor, Limit, QueryBool, Uow
from billbyte.api.responses import CONFLICT, READ, READ_ONE, WRITE
from billbyte.auth.deps import Subject
from billbyte.catalog import offers, subscriptions
from billbyte.catalog.schemas import (
    OfferCreate,
    OfferOut,
    OfferUpdate,
    SubscriptionCancel,
    SubscriptionCreate,
    SubscriptionOut,
    SubscriptionUpdate,
)
from billbyte.kit.pagination import ListResponse
from billbyte.kit.vendors import Vendor

router = APIRouter(tags=["catalog"])


@router.post(
    "/v1/catalog",
    summary="Add an offer to the catalogue",
    status_code=status.HTTP_201_CREATED,
    response_model=OfferOut,
    responses={**WRITE, **CONFLICT},
)
def create_offer(body: OfferCreate, subject: Subject, uow: Uow) -> OfferOut:
    offer = offers.create_offer(uow.session, subject, body)
    uow.commit()
    return offers.offer_out(offer)


@router.get(
    "/v1/catalog",
    summary="List catalogue offers (active ones are what customers can pick from)",
    response_model=ListResponse[OfferOut],
    responses=READ,
)
def list_offers(
    subject: Subject,
    uow: Uow,
    active: QueryBool = None,
    vendor: Vendor | None = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_PAGE,
) -> ListResponse[OfferOut]:
    page = offers.list_offers(
        uow.session,
        subject,
        active=active,
        vendor=vendor.value if vendor else None,
        cursor=cursor,
        limit=limit,
    )
    return ListResponse(
        data=[offers.offer_out(o) for o in page.items],
        next_cursor=page.next_cursor,
        has_more=page.next_cursor is not None,
    )


@router.get(
    "/v1/catalog/{offer_id}",
    summary="Get a catalogue offer",
    response_model=OfferOut,
    responses=READ_ONE,
)
def get_offer(offer_id: str, subject: Subject, uow: Uow) -> OfferOut:
    return offers.offer_out(offers.get_offer(uow.session, subject, offer_id))


@router.patch(
    "/v1/catalog/{offer_id}",
    summary="Update a catalogue offer (prices, name, active)",
    response_model=OfferOut,
    responses=WRITE,
)
def update_offer(offer_id: str, body: OfferUpdate, subject: Subject, uow: Uow) -> OfferOut:
    offer = offers.update_offer(uow.session, subject, offer_id, body)
    uow.commit()
    return offers.offer_out(offer)


@router.post(
    "/v1/customers/{customer_id}/subscriptions",
    summary="Subscribe a customer to a catalogue offer",
    status_code=status.HTTP_201_CREATED,
    response_model=SubscriptionOut,
    responses={**WRITE, **CONFLICT},
)
def create_subscription(
    customer_id: str, body: SubscriptionCreate, subject: Subject, uow: Uow
) -> SubscriptionOut:
    subscription = subscriptions.create_subscription(uow.session, subject, customer_id, body)
    uow.commit()
    return subscriptions.subscription_out(uow.session, subscription)


@router.get(
    "/v1/customers/{customer_id}/subscriptions",
    summary="List a customer's licence subscriptions",
    response_model=ListResponse[SubscriptionOut],
    responses=READ_ONE,
)
def list_subscriptions(
    customer_id: str,
    subject: Subject,
    uow: Uow,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_PAGE,
) -> ListResponse[SubscriptionOut]:
    page = subscriptions.list_subscriptions(
        uow.session, subject, customer_id, cursor=cursor, limit=limit
    )
    return ListResponse(
        data=[subscriptions.subscription_out(uow.session, s) for s in page.items],
        next_cursor=page.next_cursor,
        has_more=page.next_cursor is not None,
    )


@router.get(
    "/v1/customers/{customer_id}/subscriptions/{subscription_id}",
    summary="Get a licence subscription",
    response_model=SubscriptionOut,
    responses=READ_ONE,
)
def get_subscription(
    customer_id: str, subscription_id: str, subject: Subject, uow: Uow
) -> SubscriptionOut:
    subscription = subscriptions.get_subscription(
        uow.session, subject, customer_id, subscription_id
    )
    return subscriptions.subscription_out(uow.session, subscription)


@router.patch(
    "/v1/customers/{customer_id}/subscriptions/{subscription_id}",
    summary="Change seats (from an effective date) or auto-renewal",
    response_model=SubscriptionOut,
    responses={**WRITE, **CONFLICT},
)
def update_subscription(
    customer_id: str,
    subscription_id: str,
    body: SubscriptionUpdate,
    subject: Subject,
    uow: Uow,
) -> SubscriptionOut:
    subscription = subscriptions.update_subscription(
        uow.session, subject, customer_id, subscription_id, body
    )
    uow.commit()
    return subscriptions.subscription_out(uow.session, subscription)


@router.post(
    "/v1/customers/{customer_id}/subscriptions/{subscription_id}/cancel",
    summary="Cancel a licence subscription (see the cancellation rules)",
    response_model=SubscriptionOut,
    responses={**WRITE, **CONFLICT},
)
def cancel_subscription(
    customer_id: str,
    subscription_id: str,
    body: SubscriptionCancel,
    subject: Subject,
    uow: Uow,
) -> SubscriptionOut:
    subscription = subscriptions.cancel_subscription(
        uow.session, subject, customer_id, subscription_id, body
    )
    uow.commit()
    return subscriptions.subscription_out(uow.session, subscription)

"""Webhooks created through the API, and the delivery log of every webhook.

Each change is stored first, then the webhook targets (the config file's
webhooks plus the enabled stored ones, :mod:`mediaserver.webhooks.targets`,
reached through :class:`~mediaserver.api.deps.WebhookService`) are read again
from the store, so the next event already goes where the API says. The
endpoint URL of a webhook cannot change (as in the Callr seed): create a new
webhook instead. Secrets are never shown back;
``signed`` tells whether one is set.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request

from mediaserver.api.deps import webhooks_of
from mediaserver.api.models import (
    SID_PATTERN,
    IdCase,
    Status,
    Webhook,
    WebhookIn,
    WebhookLog,
    WebhookLogPage,
    WebhookPage,
    WebhookPatch,
    not_found,
)
from mediaserver.api.native import (
    Limit,
    Offset,
    SortOrder,
    aware,
    opt_timestamp,
    page_of,
    store_of,
    timestamp,
)
from mediaserver.store import Delivery, DeliveryFilter
from mediaserver.store import Webhook as StoredWebhook

router = APIRouter(tags=["webhooks"])

Sid = Annotated[str, Path(pattern=SID_PATTERN, description="webhook sid"), IdCase]


def webhook_out(hook: StoredWebhook) -> Webhook:
    return Webhook(
        sid=hook.id,
        endpoint=hook.url,
        events=list(hook.events),
        status="enabled" if hook.enabled else "disabled",
        signed=bool(hook.secret),
        failed=hook.failed,
        lastfailed=opt_timestamp(hook.last_failed_at),
        created=timestamp(hook.created_at),
        updated=timestamp(hook.updated_at),
    )


def log_out(delivery: Delivery) -> WebhookLog:
    return WebhookLog.model_validate(
        {
            "id": delivery.event_id,
            "sid": delivery.webhook_id,
            "endpoint": delivery.url,
            "type": delivery.event_type,
            "try": max(0, delivery.attempt - 1),
            "at": timestamp(delivery.at),
            "httpcode": delivery.status_code,
            "outcome": delivery.outcome,
            "error": delivery.error,
            "duration": round(delivery.duration_ms, 3),
            "subject": delivery.subject_sid,
        }
    )


async def refresh_targets(request: Request) -> None:
    """Point the dispatcher at the config's webhooks and the enabled stored ones."""
    store_of(request)  # 503 while the server is starting or stopping
    await webhooks_of(request).refresh()


@router.get("/api/webhooks", response_model=WebhookPage, summary="Search webhooks")
async def search_webhooks(
    request: Request,
    offset: Offset = 0,
    limit: Limit = 10,
    order: SortOrder = "desc",
    status: Annotated[Literal["enabled", "disabled"] | None, Query()] = None,
    event: Annotated[str | None, Query(max_length=100, description="an exact pattern")] = None,
) -> dict[str, Any]:
    enabled = None if status is None else status == "enabled"
    page = await store_of(request).webhooks.search(
        event=event, enabled=enabled, order=order, limit=limit, offset=offset
    )
    return page_of([webhook_out(w) for w in page.hits], page.total, offset)


@router.post("/api/webhooks", response_model=Webhook, status_code=201, summary="Create a webhook")
async def create_webhook(request: Request, body: WebhookIn) -> Webhook:
    hook = await store_of(request).webhooks.create(
        body.endpoint, body.events, secret=body.secret, enabled=body.status == "enabled"
    )
    await refresh_targets(request)
    return webhook_out(hook)


@router.get("/api/webhooks/logs", response_model=WebhookLogPage, summary="Search the delivery log")
async def search_logs(
    request: Request,
    offset: Offset = 0,
    limit: Limit = 10,
    order: SortOrder = "desc",
    sid: Annotated[
        str | None, Query(pattern=SID_PATTERN, description="webhook sid"), IdCase
    ] = None,
    endpoint: Annotated[str | None, Query(max_length=2048)] = None,
    id: Annotated[str | None, Query(max_length=64, description="event id")] = None,
    type: Annotated[str | None, Query(max_length=100, description="event type")] = None,
    httpcode: Annotated[int | None, Query(ge=100, le=999)] = None,
    try_: Annotated[int | None, Query(alias="try", ge=0, le=10)] = None,
    outcome: Annotated[Literal["delivered", "retrying", "failed"] | None, Query()] = None,
    after: Annotated[datetime | None, Query(description="RFC 3339, inclusive")] = None,
    before: Annotated[datetime | None, Query(description="RFC 3339, inclusive")] = None,
) -> dict[str, Any]:
    filters = DeliveryFilter(
        webhook_id=sid,
        url=endpoint,
        event_id=id,
        event_type=type,
        outcome=outcome,
        status_code=httpcode,
        attempt=None if try_ is None else try_ + 1,
        since=aware(after, "after"),
        until=aware(before, "before"),
    )
    page = await store_of(request).deliveries.search(
        filters, order=order, limit=limit, offset=offset
    )
    return page_of([log_out(d) for d in page.hits], page.total, offset)


@router.get("/api/webhooks/{sid}", response_model=Webhook, summary="Get a webhook")
async def get_webhook(request: Request, sid: Sid) -> Webhook:
    hook = await store_of(request).webhooks.get(sid)
    if hook is None:
        raise not_found("webhook", sid, "sid")
    return webhook_out(hook)


@router.patch("/api/webhooks/{sid}", response_model=Webhook, summary="Update a webhook")
async def update_webhook(request: Request, sid: Sid, body: WebhookPatch) -> Webhook:
    given = body.model_fields_set
    clear_secret = "secret" in given and body.secret is None
    hook = await store_of(request).webhooks.update(
        sid,
        events=body.events,
        secret=body.secret,
        clear_secret=clear_secret,
        enabled=None if body.status is None else body.status == "enabled",
    )
    if hook is None:
        raise not_found("webhook", sid, "sid")
    await refresh_targets(request)
    return webhook_out(hook)


@router.delete("/api/webhooks/{sid}", response_model=Status, summary="Delete a webhook")
async def delete_webhook(request: Request, sid: Sid) -> Status:
    if not await store_of(request).webhooks.delete(sid):
        raise not_found("webhook", sid, "sid")
    await refresh_targets(request)
    return Status(code="ok", message=f"webhook {sid} deleted")

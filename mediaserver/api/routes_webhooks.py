"""Webhooks created through the API, and the delivery log of every webhook.

Each change is stored first, then the webhook targets (the config file's
webhooks plus the enabled stored ones, :mod:`mediaserver.webhooks.targets`,
reached through :class:`~mediaserver.api.deps.WebhookService`) are read again
from the store, so the next event already goes where the API says. The
endpoint URL of a webhook cannot change (as in the Callr seed): create a new
webhook instead. Secrets are never shown back;
``signed`` tells whether one is set.

Two ways to create one. The seed's: ``type`` (one event type, in the query
as the seed has it, or in the body) and ``options``
(``{"hmac_algo": "SHA512", "hmac_secret": "..."}``, seeds/000
Webhook.Options); the native one: ``events`` (patterns) and ``secret``
(HMAC-SHA256). A body mixing both ways for the same thing (``type`` and
``events``, ``options.hmac_secret`` and ``secret``) is refused, naming the two
fields. The seed's statuses ``disabled-admin`` and ``disabled-system`` can be
searched for but are never set here: no administrator or billing system
disables a webhook on one's own server.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request

from mediaserver.api.deps import webhooks_of
from mediaserver.api.models import (
    SID_PATTERN,
    ApiError,
    IdCase,
    Status,
    Webhook,
    WebhookIn,
    WebhookLog,
    WebhookLogPage,
    WebhookOptionsOut,
    WebhookPage,
    WebhookPatch,
    WebhookType,
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
    single = hook.events[0] if len(hook.events) == 1 else None
    return Webhook(
        sid=hook.id,
        type=single if single is not None and "*" not in single else None,
        endpoint=hook.url,
        events=list(hook.events),
        status="enabled" if hook.enabled else "disabled",
        options=WebhookOptionsOut.model_validate(
            {"hmac_algo": hook.hmac_algo if hook.secret else None}
        ),
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
    status: Annotated[
        Literal["enabled", "disabled", "disabled-admin", "disabled-system"] | None, Query()
    ] = None,
    event: Annotated[str | None, Query(max_length=100, description="an exact pattern")] = None,
    sid: Annotated[
        str | None, Query(pattern=SID_PATTERN, description="webhook sid"), IdCase
    ] = None,
    type: Annotated[WebhookType | None, Query(description="the one event type it takes")] = None,
) -> dict[str, Any]:
    if status in ("disabled-admin", "disabled-system"):
        return page_of([], 0, offset)  # never set on one's own server (module doc)
    if type is not None and event is not None and type != event:
        raise ApiError(422, "invalid_request", "give type or event, not both", "type")
    enabled = None if status is None else status == "enabled"
    page = await store_of(request).webhooks.search(
        event=type or event, enabled=enabled, sid=sid, order=order, limit=limit, offset=offset
    )
    return page_of([webhook_out(w) for w in page.hits], page.total, offset)


def _creation(body: WebhookIn, type: str | None) -> tuple[list[str], str | None, str]:
    """The event patterns, secret and HMAC algorithm a creation asks for (module doc)."""
    if type is not None and body.type is not None and type != body.type:
        raise ApiError(
            422, "invalid_request", f"?type={type} and the body's type {body.type} differ", "type"
        )
    one = type or body.type
    if one is not None and body.events is not None:
        raise ApiError(
            422, "invalid_request", "give type (one event) or events (patterns), not both", "events"
        )
    options = body.options
    secret = body.secret
    if options is not None and options.hmac_secret is not None:
        if secret is not None:
            raise ApiError(
                422, "invalid_request", "give options.hmac_secret or secret, not both", "secret"
            )
        secret = options.hmac_secret
    algo = options.hmac_algo if options is not None else "SHA256"
    events = [one] if one is not None else (body.events or ["*"])
    return events, secret, algo


@router.post("/api/webhooks", response_model=Webhook, status_code=201, summary="Create a webhook")
async def create_webhook(
    request: Request,
    body: WebhookIn,
    type: Annotated[WebhookType | None, Query(description="the seed's place for the type")] = None,
) -> Webhook:
    events, secret, algo = _creation(body, type)
    hook = await store_of(request).webhooks.create(
        body.endpoint, events, secret=secret, enabled=body.status == "enabled", hmac_algo=algo
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

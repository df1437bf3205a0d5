"""The webhooks the server posts to now, and the log of every delivery.

The targets are the config file's ``webhooks`` plus the webhooks created
through the API and enabled, read from the store. The dispatcher reads them at
each publish (:meth:`WebhookTargets.subscriptions`), so a change made through
the API (:meth:`~WebhookTargets.refresh`, after the store has it) or by a
reload (:meth:`~WebhookTargets.replace`, with no await, all or nothing) holds
for the next event. Each delivery attempt is appended to the store's log, and
each attempt at a Call Control event to the call event log as well.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from mediaserver.config import WebhookConfig
from mediaserver.webhooks.call_events import call_event_of, is_call_control_event
from mediaserver.webhooks.subscriptions import WebhookSubscription, targets_from_config

if TYPE_CHECKING:
    from mediaserver.store import Store
    from mediaserver.webhooks.delivery import DeliveryRecord


class WebhookTargets:
    """Where events go, kept the same as the config and the store say."""

    def __init__(
        self,
        configured: Iterable[WebhookConfig],
        store: Callable[[], Store | None],
        application_name: Callable[[str], str] = lambda _: "",
    ):
        """``store``: the store once open (None before start and after shutdown);
        ``application_name``: the name of a Call Control application by id, for the
        call event log."""
        self._configured = tuple(configured)
        self._store = store
        self._application_name = application_name
        self._targets: list[WebhookSubscription] = list(targets_from_config(self._configured))

    def subscriptions(self) -> list[WebhookSubscription]:
        """The webhooks events go to now."""
        return self._targets

    async def refresh(self) -> None:
        """Read the enabled stored webhooks again (at start, and after the API changed one)."""
        store = self._store()
        stored = await store.webhooks.enabled() if store is not None else []
        self.replace(self._configured, stored)

    def replace(
        self, configured: Iterable[WebhookConfig], stored: Iterable[WebhookSubscription]
    ) -> None:
        """Swap in a reloaded config's webhooks and the stored ones, at once."""
        self._configured = tuple(configured)
        self._targets = [*targets_from_config(self._configured), *stored]

    async def record_delivery(self, record: DeliveryRecord) -> None:
        """Append one delivery attempt to the log (kept while the store is open); a Call
        Control event's also to the call event log (``GET /telnyx/v2/call_events``)."""
        store = self._store()
        if store is None:
            return
        await store.deliveries.append(record)
        if is_call_control_event(record.event_type):
            name = self._application_name(record.webhook_id)
            await store.call_events.append(call_event_of(record, name))

"""Call Control applications, kept in the store and in memory (seed 002, SPEC section 5).

Theory of operation. An application is the seed's "connection": a
``call-control:APPLICATION_ID`` route sends its calls' events to the
application's ``webhook_event_url`` (its failover URL when that fails, each
post limited to ``webhook_timeout_secs``). Calls look applications up often
and must not wait for the database, so :class:`CallControlApplications`
loads them all at start-up (:meth:`load`) and answers :meth:`get` from
memory. Every change is written to the store first, in one transaction, and
only then to memory, with no await in between: a change the store refuses
leaves memory as it was, and a reader never sees half a change. Changes are
serialised by a lock, so two PATCHes of one application never lose each
other's fields.

The records are :class:`~mediaserver.store.CallControlApplication` (frozen
dataclasses, the seed's fields with their defaults); the HTTP routes are
``mediaserver/api/telnyx/applications.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from mediaserver.callcontrol.controlled import Webhook
from mediaserver.callcontrol.service import Application
from mediaserver.store import ApplicationSettings, CallControlApplication, Store

__all__ = [
    "ApplicationSettings",
    "CallControlApplication",
    "CallControlApplications",
    "UnknownApplication",
]

Change = Callable[[ApplicationSettings], ApplicationSettings]
"""What an update does to an application's settings (pure; may raise to refuse)."""


class UnknownApplication(LookupError):
    """No application has this id (HTTP 404)."""

    def __init__(self, app_id: str) -> None:
        super().__init__(f"No call control application with id {app_id!r}.")
        self.app_id = app_id


class CallControlApplications:
    """The applications: read from memory, changed in the store and then in memory."""

    def __init__(self, store: Callable[[], Store | None]) -> None:
        self._store = store
        self._apps: dict[str, CallControlApplication] = {}
        self._changing = asyncio.Lock()

    async def load(self) -> None:
        """Read every stored application (at start-up, once the store is open)."""
        self._apps = {app.id: app for app in await self._opened().applications.all()}

    def get(self, app_id: str) -> CallControlApplication | None:
        """The application ``app_id``, None when there is none."""
        return self._apps.get(app_id)

    def name_of(self, app_id: str) -> str:
        """The name of application ``app_id``; "" when there is none (the event log's)."""
        app = self._apps.get(app_id)
        return app.application_name if app is not None else ""

    def all(self) -> list[CallControlApplication]:
        """Every application, oldest first."""
        return sorted(self._apps.values(), key=lambda app: (app.created_at, app.id))

    async def create(self, settings: ApplicationSettings) -> CallControlApplication:
        async with self._changing:
            app = await self._opened().applications.create(settings)
            self._apps[app.id] = app
            return app

    async def update(self, app_id: str, change: Change) -> CallControlApplication:
        """Apply ``change`` to the settings of ``app_id`` as they are when the lock is held."""
        async with self._changing:
            current = self._apps.get(app_id)
            if current is None:
                raise UnknownApplication(app_id)
            app = await self._opened().applications.update(app_id, change(current.settings))
            if app is None:  # deleted behind our back (another node): forget it too
                self._apps.pop(app_id, None)
                raise UnknownApplication(app_id)
            self._apps[app.id] = app
            return app

    async def delete(self, app_id: str) -> CallControlApplication:
        async with self._changing:
            app = await self._opened().applications.delete(app_id)
            self._apps.pop(app_id, None)
            if app is None:
                raise UnknownApplication(app_id)
            return app

    def _opened(self) -> Store:
        store = self._store()
        if store is None:
            raise RuntimeError("the store is not open (the server is starting or stopping)")
        return store


def application_of(app: CallControlApplication) -> Application:
    """What a call takes from a stored application: its webhook URLs and post timeout,
    and the first-command timeout (seconds, None when off)."""
    webhook = Webhook(
        app.webhook_event_url,
        app.webhook_event_failover_url or None,
        float(app.webhook_timeout_secs) if app.webhook_timeout_secs else None,
        app.id,
    )
    timeout = float(app.first_command_timeout_secs) if app.first_command_timeout else None
    return Application(app.id, webhook, timeout)

"""What the API's routes need of the server's services, as protocols.

Routes reach runs, the scenario catalog, the webhook targets and the Call
Control applications only through these (:func:`runs_of`, :func:`catalog_of`,
:func:`webhooks_of`, :func:`applications_of`), never through the user agent,
the library, the router, the store's scenario and application tables or the
server's attributes; ``server.py`` composes the real ones
(:class:`~mediaserver.runs.Runs`, :class:`~mediaserver.catalog.Catalog`,
:class:`~mediaserver.webhooks.targets.WebhookTargets`,
:class:`~mediaserver.callcontrol.applications.CallControlApplications`), and a
test may hand in others. The services' errors are turned into API
answers by :func:`catalog_error`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from fastapi import Request

from mediaserver.api.models import ApiError
from mediaserver.callcontrol.applications import Change
from mediaserver.catalog import Attached, CatalogError, NotFound, ReadOnly, Unavailable, Unfit
from mediaserver.store import ApplicationSettings, CallControlApplication
from mediaserver.store import Scenario as StoredScenario

if TYPE_CHECKING:
    from mediaserver.actions.vms_detect import VmsDetect
    from mediaserver.calls import Call


class RunService(Protocol):
    """Starting, cancelling and injecting runs; the live calls."""

    async def start_run(
        self,
        name: str,
        *,
        to: str | None = None,
        variables: dict[str, object] | None = None,
        caller_id: str | None = None,
        vms_detect: VmsDetect | None = None,
    ) -> str: ...

    def cancel_run(self, run_id: str) -> bool: ...

    def inject_actions(self, call_id: str, actions: list[Any]) -> str: ...

    def find_call(self, call_id: str) -> Call | None: ...

    def live_calls(self) -> list[Call]: ...


class CatalogService(Protocol):
    """Scenarios and their numbers, kept the same in the store, the library and the router."""

    async def get(self, sid: str) -> StoredScenario: ...

    async def create(self, name: str, script: str) -> StoredScenario: ...

    async def update(self, sid: str, name: str | None, script: str | None) -> StoredScenario: ...

    async def delete(self, sid: str) -> StoredScenario: ...

    async def attach(self, sid: str, number: str) -> Attached: ...

    async def detach(self, sid: str, number: str) -> None: ...


class ApplicationService(Protocol):
    """Call Control applications: read from memory, changed in the store then in memory."""

    def get(self, app_id: str) -> CallControlApplication | None: ...

    def all(self) -> list[CallControlApplication]: ...

    async def create(self, settings: ApplicationSettings) -> CallControlApplication: ...

    async def update(self, app_id: str, change: Change) -> CallControlApplication: ...

    async def delete(self, app_id: str) -> CallControlApplication: ...


class WebhookService(Protocol):
    """Where webhooks go: told when the API changed a stored webhook."""

    async def refresh(self) -> None: ...


def runs_of(request: Request) -> RunService:
    runs: RunService = request.app.state.runs
    return runs


def catalog_of(request: Request) -> CatalogService:
    catalog: CatalogService = request.app.state.catalog
    return catalog


def applications_of(request: Request) -> ApplicationService:
    applications: ApplicationService = request.app.state.call_control_apps
    return applications


def webhooks_of(request: Request) -> WebhookService:
    webhooks: WebhookService = request.app.state.webhook_targets
    return webhooks


def catalog_error(exc: CatalogError) -> ApiError:
    """The API answer for a change the catalog refused."""
    if isinstance(exc, NotFound):
        return ApiError(404, "not_found", str(exc), exc.field)
    if isinstance(exc, ReadOnly):
        return ApiError(409, "read_only", str(exc), exc.field)
    if isinstance(exc, Unfit):
        return ApiError(422, "invalid_scenario", str(exc), exc.field)
    if isinstance(exc, Unavailable):
        return ApiError(503, "unavailable", str(exc))
    return ApiError(409, "conflict", str(exc), exc.field)

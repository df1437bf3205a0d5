"""Every router of the Call Control API, mounted under ``/telnyx/v2`` by ``api/app.py``."""

from __future__ import annotations

from fastapi import APIRouter

from mediaserver.api.telnyx import (
    applications,
    call_events,
    routes_calls,
    routes_conferences,
    routes_queues,
    routes_recordings,
)

ROUTERS: list[APIRouter] = [
    routes_calls.router,
    applications.router,
    call_events.router,
    routes_conferences.router,
    routes_queues.router,
    routes_recordings.router,
]

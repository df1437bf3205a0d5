"""The Call Control API (SPEC section 5): seed 002's paths under ``/telnyx/v2``.

The official Telnyx SDK works against it unchanged with ``base_url`` set to
``http://HOST:PORT/telnyx/v2``: the same paths, request bodies, ``{"data":
...}`` answers and ``{"errors": [...]}`` error shape (:mod:`.errors`). The
routes only translate HTTP to the call-control service
(:mod:`mediaserver.callcontrol`) and back; they hold no call state.
"""

from __future__ import annotations

from fastapi import APIRouter

PREFIX = "/telnyx/v2"

ROUTERS: list[APIRouter] = []
"""Every router of the Call Control API, mounted under :data:`PREFIX` by ``api/app.py``."""

# The routers of each resource register here (imported last: they import this package's errors).
from mediaserver.api.telnyx import applications, call_events  # noqa: E402

ROUTERS += [applications.router, call_events.router]

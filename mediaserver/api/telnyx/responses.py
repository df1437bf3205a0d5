"""The seed's error body (``Errors``) as OpenAPI models, for the routes to declare.

What :mod:`.errors` answers, documented: every route under ``/telnyx/v2``
lists these statuses with this body, so the OpenAPI document (and clients
generated from it) know the shape of a refusal.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class ErrorSource(BaseModel):
    pointer: str | None = None  # RFC 6901 pointer to the body field at fault
    parameter: str | None = None  # the query parameter at fault


class ErrorItem(BaseModel):
    code: str
    title: str
    detail: str
    source: ErrorSource | None = None


class Errors(BaseModel):
    """The seed's ``Errors``."""

    errors: list[ErrorItem]


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": Errors, "description": "malformed JSON body"},
    401: {"model": Errors, "description": "no API key, or a wrong one"},
    404: {"model": Errors, "description": "unknown id"},
    413: {"model": Errors, "description": "body over the size limit"},
    422: {"model": Errors, "description": "invalid input; names the field"},
}

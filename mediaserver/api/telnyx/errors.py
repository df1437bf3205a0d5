"""The Call Control API's error shape (seed 002 ``Errors``), for every answer under ``/telnyx/v2``.

The seed answers errors as ``{"errors": [{"code", "title", "detail", "source":
{"pointer"}}]}``: ``code`` a numeric string, ``pointer`` an RFC 6901 JSON
pointer to the body field at fault (``/to``), or ``source.parameter`` for a
query parameter. The SDK raises its typed errors from the status
(``NotFoundError``, ``UnprocessableEntityError``...) and keeps this body.

The codes are Telnyx's published ones where one exists: 10005 resource not
found, 10015 invalid value, 10004 missing parameter, 10009 authentication
failed, 90018 the call has already ended (the answer to a command on a call
that is over), 90015 a command refused in the call's state.
"""

from __future__ import annotations

from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from mediaserver.callcontrol.controlled import CommandRefused

INVALID = "10015"
MISSING = "10004"
NOT_FOUND = "10005"
UNAUTHORIZED = "10009"
CALL_ENDED = "90018"
WRONG_STATE = "90015"
UNEXPECTED = "10007"

_STATUS_TITLES = {
    400: ("10015", "Bad Request"),
    401: (UNAUTHORIZED, "Authentication failed"),
    404: (NOT_FOUND, "Resource not found"),
    405: ("10015", "Method not allowed"),
    413: ("10015", "Request too large"),
    422: (INVALID, "Invalid value"),
    500: (UNEXPECTED, "Unexpected error"),
}


class TelnyxError(Exception):
    """An error answer under ``/telnyx/v2``: status, code, title, detail and the field at fault."""

    def __init__(
        self,
        status: int,
        code: str,
        title: str,
        detail: str,
        *,
        pointer: str | None = None,
        parameter: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.pointer = pointer
        self.parameter = parameter

    def wire(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "title": self.title, "detail": self.detail}
        if self.pointer is not None:
            error["source"] = {"pointer": self.pointer}
        elif self.parameter is not None:
            error["source"] = {"parameter": self.parameter}
        return {"errors": [error]}

    def response(self, headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse(self.wire(), status_code=self.status, headers=headers)


def invalid(field: str, detail: str) -> TelnyxError:
    """422 for a body field (``field`` as a dotted path: ``answering_machine_detection``)."""
    return TelnyxError(422, INVALID, "Invalid value", detail, pointer=pointer_of(field))


def not_found(what: str, ident: str) -> TelnyxError:
    return TelnyxError(404, NOT_FOUND, "Resource not found", f"No {what} with id {ident!r}.")


def call_ended(call_control_id: str) -> TelnyxError:
    return TelnyxError(
        422,
        CALL_ENDED,
        "Call has already ended",
        f"Call {call_control_id!r} is no longer active and can't receive commands.",
    )


def wrong_state(detail: str) -> TelnyxError:
    return TelnyxError(422, WRONG_STATE, "Invalid call state", detail)


def refused(exc: CommandRefused) -> TelnyxError:
    """A command that does not apply: 422 naming the field, or the call's state."""
    if exc.field is None:
        return wrong_state(str(exc))
    return invalid(exc.field, str(exc))


def pointer_of(field: str) -> str:
    """``a.b.0`` -> ``/a/b/0`` (RFC 6901: ``~`` and ``/`` escaped)."""
    parts = [p.replace("~", "~0").replace("/", "~1") for p in field.split(".") if p]
    return "/" + "/".join(parts)


def status_error(status: int, detail: str) -> TelnyxError:
    """The seed's shape for an answer the framework or the native layer made."""
    code, title = _STATUS_TITLES.get(status, (UNEXPECTED, "Error"))
    return TelnyxError(status, code, title, detail)


def from_validation(exc: RequestValidationError) -> TelnyxError:
    """FastAPI's validation errors as one seed error for the first problem (field named)."""
    errors = exc.errors()
    if not errors:
        return status_error(422, "invalid request")
    first = errors[0]
    loc = [str(p) for p in first.get("loc", ())]
    kind = first.get("type", "")
    if kind == "json_invalid":
        return TelnyxError(400, "10015", "Bad Request", "The request body is not valid JSON.")
    where, path = (loc[0], loc[1:]) if loc else ("body", [])
    field = ".".join(path)
    if kind == "missing":
        detail = f"The '{field or where}' parameter is required."
        code, title = MISSING, "Missing required parameter"
    else:
        detail = f"'{field or where}': {first.get('msg', 'invalid')}"
        code, title = INVALID, "Invalid value"
    if len(errors) > 1:
        detail += f" (and {len(errors) - 1} more)"
    if where == "query":
        return TelnyxError(422, code, title, detail, parameter=field)
    if where == "path":
        return TelnyxError(404 if field else 422, NOT_FOUND, "Resource not found", detail)
    return TelnyxError(422, code, title, detail, pointer=pointer_of(field) if field else "/")

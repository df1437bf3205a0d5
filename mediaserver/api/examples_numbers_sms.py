"""The OpenAPI examples of the phone number and SMS operations, built from their models
(:mod:`mediaserver.api.routes_numbers`, :mod:`mediaserver.api.routes_sms`), merged into
:data:`mediaserver.api.examples.EXAMPLES`."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from mediaserver.api.models import Status
from mediaserver.api.routes_numbers import NumberUpdate, PhoneNumber, ScenarioRef
from mediaserver.api.routes_sms import Sms, SmsBody, SmsIn, StatusChange

T0 = "2024-04-24T17:42:28.000Z"
T1 = "2024-04-24T17:42:28.012Z"
T2 = "2024-04-24T17:42:28.031Z"
SID = "k3x9a0pq"


def _dump(model: BaseModel) -> Any:
    return model.model_dump(mode="json", by_alias=True)


def _page(hits: list[Any]) -> dict[str, Any]:
    return {"offset": 0, "total": len(hits), "hasMore": False, "hits": hits}


def _ok(message: str) -> Any:
    return _dump(Status(code="ok", message=message))


_number = PhoneNumber.model_validate(
    {"sid": "iyoiwvy1", "e164": "+33199001234", "class": "classic", "type": "geographic",
     "assigned": T0, "country": "FR", "scenario": ScenarioRef(sid=SID, name="call-forwarding"),
     "origin": "api", "route": "call-forwarding"}
)  # fmt: skip
_sms = Sms.model_validate(
    {"direction": "outbound", "sid": "4osaxd5r", "from": "MyCompany", "to": "+33612345678",
     "body": SmsBody(text="Hello world!"), "trafficType": "marketing", "status": "delivered",
     "error": None, "created": T0, "delivered": T2, "updated": T2, "sent": T1, "parts": 1,
     "encoding": "gsm", "sipStatus": 200,
     "statusHistory": [
        StatusChange(status="created", at=T0), StatusChange(status="pending", at=T0),
        StatusChange(status="sent", at=T1), StatusChange(status="delivered", at=T2),
     ]}
)  # fmt: skip
_created = _sms.model_copy(
    update={
        "status": "created", "delivered": None, "updated": T0, "sent": None, "sipStatus": None,
        "statusHistory": [StatusChange(status="created", at=T0)],
    }
)  # fmt: skip

EXAMPLES: dict[tuple[str, str], tuple[Any, Any]] = {
    ("GET", "/api/numbers"): (None, _page([_dump(_number)])),
    ("GET", "/api/numbers/{number}"): (None, _dump(_number)),
    ("PATCH", "/api/numbers/{number}"): (
        _dump(NumberUpdate(scenario=SID)),
        _ok(f"+33199001234 attached to scenario {SID}"),
    ),
    ("PUT", "/api/numbers/{number}/scenario/{sid}"): (
        None,
        _ok(f"+33199001234 attached to scenario {SID}"),
    ),
    ("DELETE", "/api/numbers/{number}/scenario"): (
        None,
        _ok(f"+33199001234 detached from scenario {SID}"),
    ),
    ("POST", "/api/sms"): (
        # The seed's sample is {"text"} with "to" in the query; the body may carry it too.
        SmsIn(to="+33612345678", text="Hello world!").model_dump(exclude_none=True),
        _dump(_created),
    ),
    ("GET", "/api/sms"): (None, _page([_dump(_sms)])),
    ("GET", "/api/sms/{sid}"): (None, _dump(_sms)),
}

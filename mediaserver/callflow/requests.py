"""Callback requests: what the server sends the application's URL.

Seed, "Callback Request // Voice": a JSON object by default, or the same
fields in a query string for GET. :func:`request_body` builds the object
from a :class:`CallFacts` snapshot (who, when) and the :class:`FlowState`
(key presses, recordings, session data, error), following the seed's
"When" column: ``parent_call_id``, ``connect_time_sec``, ``key_presses``,
``recordings`` and ``last_queue_poll_connect_call`` in ``live_call`` and
``end_call`` only, ``end_time`` in ``end_call`` only, ``event_name`` and
``webhook_data`` only in WEBHOOK requests, everything else always.

Units as in the seed: ``duration`` in milliseconds, ``connect_time_sec`` in
whole seconds, times as ISO 8601 UTC with milliseconds
(``2016-09-20T21:32:28.471Z``).

Decisions where the seed is silent: the numbers are the user parts of the
SIP URIs (``caller_no`` the far end, ``api_no`` ours); of the geographic
fields, city, region, country and time zone come from the number itself (an
E.164 number, :func:`location_fields`), the others are null; ``app_id`` is
``mediaserver``, ``subaccount_id`` 0, ``custom_data`` null; ``sip_domain``
is the host the caller addressed (the To URI) and ``sip_forwarded_for`` the
address the INVITE came from (the top Via's ``received``, else its host); a
WEBHOOK request has ``type`` ``live_call`` and ``is_webhook`` true.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from mediaserver.numbering import number_facts

RequestType = Literal["init_call", "live_call", "end_call", "failed_call"]

SERVICE = "programmable_voice"
APP_ID = "mediaserver"
GEO_FIELDS = (
    "latitude",
    "longitude",
    "postal_code",
    "city",
    "rate_center",
    "lata",
    "region",
    "country",
    "timezone",
)
"""Suffixes of ``caller_no_*`` and ``api_no_*``: "Possibly null"."""

_LIVE_OR_END = ("live_call", "end_call", "failed_call")


@dataclass(frozen=True)
class CallFacts:
    """What the requests say about the call itself (times in epoch milliseconds)."""

    call_id: str | None
    direction: str
    caller_no: str | None
    api_no: str | None
    started_ms: int
    answered_ms: int | None = None
    sip_domain: str | None = None
    sip_forwarded_for: str | None = None

    @classmethod
    def from_call_info(cls, info: Mapping[str, Any]) -> CallFacts:
        """From ``$call`` (:attr:`CallApi.info`): inbound, the caller is ``from``;
        outbound, the far end is ``to``."""
        outbound = info.get("direction") == "outbound"
        headers = info.get("headers") or {}
        return cls(
            call_id=info.get("id"),
            direction="outbound" if outbound else "inbound",
            caller_no=info.get("to") if outbound else info.get("from"),
            api_no=info.get("from") if outbound else info.get("to"),
            started_ms=int(info.get("started_at") or 0),
            answered_ms=info.get("answered_at"),
            sip_domain=None if outbound else _to_host(headers),
            sip_forwarded_for=None if outbound else _via_source(headers),
        )


@dataclass
class KeyPresses:
    """``key_presses[i]``: the digits of the last visit of a COLLECT, and of every visit."""

    name: str | None
    digits: str
    history: list[str] = field(default_factory=list)


@dataclass
class FlowState:
    """What the call flow has gathered so far; the loop owns and updates it."""

    key_presses: list[KeyPresses] = field(default_factory=list)
    recordings: list[tuple[str | None, str]] = field(default_factory=list)
    detection: str | None = None
    parent_call_id: str | None = None
    last_queue_poll_connect_call: dict[str, Any] | None = None  # {id, no}
    error_code: int | None = None
    error: str | None = None

    def collected(self, name: str | None, digits: str) -> None:
        """A COLLECT ended with ``digits`` ("" when nothing was pressed)."""
        for entry in self.key_presses:
            if entry.name == name:
                entry.digits = digits
                entry.history.append(digits)
                return
        self.key_presses.append(KeyPresses(name, digits, [digits]))

    def recorded(self, name: str | None, recording_id: str) -> None:
        """A RECORD or RECORDMESSAGE made recording ``recording_id``."""
        if (name, recording_id) not in self.recordings:
            self.recordings.append((name, recording_id))

    def discarded(self, recording_id: str) -> None:
        """RECORDMESSAGE ``discard`` deleted recording ``recording_id``."""
        self.recordings = [entry for entry in self.recordings if entry[1] != recording_id]


@dataclass(frozen=True)
class Webhook:
    """The extra fields of a request made by a WEBHOOK action."""

    event_name: str
    data: Any


def iso_time(epoch_ms: int) -> str:
    """``2016-09-20T21:32:28.471Z``."""
    moment = _dt.datetime.fromtimestamp(epoch_ms / 1000, tz=_dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{epoch_ms % 1000:03d}Z"


def live_status(answered: bool) -> str:
    """The seed's "Call Status" while the call is up."""
    return "live-in-progress" if answered else "live-ringing"


def location_fields(prefix: str, number: str | None) -> dict[str, str | None]:
    """``{prefix}_country`` and ``_timezone`` from what the number itself tells
    (:mod:`mediaserver.numbering`, E.164 numbers only); the place (city, region,
    latitude, postal code, rate center, LATA) is null."""
    facts = number_facts(number or "")
    known = {
        "country": facts.country,
        "timezone": facts.timezone,
    }
    return {f"{prefix}_{suffix}": known.get(suffix) for suffix in GEO_FIELDS}


def request_body(
    kind: RequestType,
    facts: CallFacts,
    state: FlowState,
    *,
    now_ms: int,
    status: str,
    session_data: Any,
    webhook: Webhook | None = None,
    detection: str | None = None,
) -> dict[str, Any]:
    """The JSON object of one callback request."""
    body: dict[str, Any] = {
        "service": SERVICE,
        "type": kind,
        "is_webhook": webhook is not None,
        "app_id": APP_ID,
        "subaccount_id": 0,
        "call_id": facts.call_id,
    }
    if kind in _LIVE_OR_END:
        body["parent_call_id"] = state.parent_call_id
    body["start_time"] = iso_time(facts.started_ms)
    if kind == "end_call":
        body["end_time"] = iso_time(now_ms)
    if kind in _LIVE_OR_END:
        connected = 0 if facts.answered_ms is None else max(0, now_ms - facts.answered_ms)
        body["connect_time_sec"] = connected // 1000
    body["direction"] = facts.direction
    body["duration"] = max(0, now_ms - facts.started_ms)
    body["status"] = status
    body["detection"] = detection if detection is not None else state.detection
    for prefix, number in (("caller_no", facts.caller_no), ("api_no", facts.api_no)):
        body[prefix] = number
        body.update(location_fields(prefix, number))
    if kind in _LIVE_OR_END:
        body["key_presses"] = [
            {"name": k.name, "digits": k.digits, "history": list(k.history)}
            for k in state.key_presses
        ]
        body["recordings"] = [{"name": name, "id": rid} for name, rid in state.recordings]
        body["last_queue_poll_connect_call"] = state.last_queue_poll_connect_call
    body["custom_data"] = None
    body["session_data"] = session_data
    if webhook is not None:
        body["event_name"] = webhook.event_name
        body["webhook_data"] = webhook.data
    body["sip_domain"] = facts.sip_domain
    body["sip_forwarded_for"] = facts.sip_forwarded_for
    body["error_code"] = state.error_code
    body["error"] = state.error
    return body


def query_items(body: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The body as query-string pairs, for a GET callback.

    Seed: key presses become ``key_presses.{name}={digits}`` without their
    history, recordings ``recordings.{name}={id}``. Decisions: nested objects
    are flattened with dots (``session_data.user.name=Bob``) and list items
    with their index (``session_data.pets.0=Spot``), as the seed's Template
    Mapping names "flattened" properties; nulls are left out; booleans are
    ``true``/``false``; a COLLECT or RECORD without a name gives
    ``key_presses=...`` / ``recordings=...``.
    """
    items: list[tuple[str, str]] = []
    for key, value in body.items():
        if key == "key_presses":
            for entry in value:
                items.append((_named("key_presses", entry.get("name")), str(entry["digits"])))
        elif key == "recordings":
            for entry in value:
                items.append((_named("recordings", entry.get("name")), str(entry["id"])))
        else:
            items.extend(_flatten(key, value))
    return items


def with_query(url: str, items: list[tuple[str, str]]) -> str:
    """``url`` with ``items`` appended to whatever query it already has."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + items
    return urlunsplit(parts._replace(query=urlencode(query)))


def minimised_size(data: Any) -> int:
    """The seed's measure of a response: its JSON without whitespace, in UTF-8 bytes."""
    return len(json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode())


def _named(prefix: str, name: object) -> str:
    return prefix if name is None else f"{prefix}.{name}"


def _flatten(key: str, value: Any) -> Iterator[tuple[str, str]]:
    if value is None:
        return
    if isinstance(value, bool):
        yield key, "true" if value else "false"
    elif isinstance(value, dict):
        for name, item in value.items():
            yield from _flatten(f"{key}.{name}", item)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _flatten(f"{key}.{index}", item)
    else:
        yield key, str(value)


_VIA_HOST = re.compile(r"^\s*SIP\s*/\s*2\.0\s*/\s*\w+\s+(\[[^\]]+\]|[^\s:;]+)", re.IGNORECASE)
_RECEIVED = re.compile(r";\s*received\s*=\s*([^\s;,]+)", re.IGNORECASE)
_URI_HOST = re.compile(r"sips?:(?:[^@;>\s]*@)?(\[[^\]]+\]|[^:;>\s]+)", re.IGNORECASE)


def _header(headers: Mapping[str, str], *names: str) -> str | None:
    wanted = {name.lower() for name in names}
    for name, value in headers.items():
        if name.lower() in wanted:
            return value
    return None


def _via_source(headers: Mapping[str, str]) -> str | None:
    via = _header(headers, "via", "v")
    if via is None:
        return None
    first = via.split(",")[0]
    received = _RECEIVED.search(first)
    if received is not None:
        return received.group(1)
    host = _VIA_HOST.match(first)
    return host.group(1).strip("[]") if host else None


def _to_host(headers: Mapping[str, str]) -> str | None:
    to = _header(headers, "to", "t")
    match = _URI_HOST.search(to) if to else None
    return match.group(1).strip("[]") if match else None

"""REALTIME10 messages: the RT.Request the server posts, the RT.Response it reads.

Seed (Callr v1, ``RT.Request``): ``app``, ``call_status``, ``callid``,
``cdr_field``, ``cli_name``, ``cli_number``, ``command``, ``command_error``,
``command_id``, ``command_result``, ``date_started``, ``number``,
``request_hash``, ``variables``. ``RT.Response``: ``command``,
``command_id``, ``params``, ``variables`` ("we will send it back without
touching it in our next request"), answered "within 5 seconds".

The seed refers to "the commands list in Real-Time" without printing it; the
commands and their parameters are this server's (docs/realtime.md) and
:func:`native_entries` turns each into native action items, so they behave as
the same actions do in a YAML scenario.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

Entry = dict[str, Any]
"""One native action item as data: ``{"action": "say@v1", "params": {...}}``."""

UP = "UP"
HANGUP = "HANGUP"
"""``call_status``: the seed's sample shows ``UP`` for a call in progress."""

RESULT = "$realtimeResult"
"""Where a command's native item leaves its result (read, record, dialout)."""
RESPONSE_SECONDS = 5.0
"""Seed, RT.Response: "You have to send it within 5 seconds"."""

COMMANDS = ("play", "say", "read", "record", "dialout", "send_dtmf", "wait", "hangup")
"""The commands a RT.Response may give (docs/realtime.md)."""

DIAL_STATUSES = {
    "answered": "ANSWER",
    "busy": "BUSY",
    "no-answer": "NOANSWER",
    "canceled": "CANCEL",
    "failed": "CHANUNAVAIL",
}
"""dial@v1's statuses in the seed's casing (Click-to-Call Call Status ``ANSWER``,
CDR.Out ``dialstatus`` ``BUSY``)."""


class CommandError(ValueError):
    """A RT.Response that cannot be run; the message names the field and the fix."""


@dataclass(frozen=True)
class CallFacts:
    """What every RT.Request says about the call."""

    app: str
    callid: int | str
    cli_number: str
    cli_name: str
    number: str
    date_started: str
    request_hash: str = ""
    cdr_field: str = ""


@dataclass(frozen=True)
class Command:
    """A parsed RT.Response."""

    name: str
    command_id: Any
    params: Mapping[str, Any] = field(default_factory=dict)
    variables: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """What the last command gave: the next request's ``command_*`` fields."""

    command: str = ""
    command_id: Any = None
    result: str = ""
    error: str = ""


def seed_datetime(epoch_ms: int) -> str:
    """Seed format ``datetime``: "YYYY-MM-DD HH:MM:SS in UTC timezone"."""
    moment = datetime.datetime.fromtimestamp(epoch_ms / 1000, datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def call_id(value: str) -> int | str:
    """Seed: ``callid`` is an int; this server's ids are kept as they are when not digits."""
    return int(value) if value.isdigit() else value


def request_body(
    facts: CallFacts, status: str, outcome: Outcome, variables: Mapping[str, Any]
) -> dict[str, Any]:
    """A RT.Request (seed field names, in the seed's order)."""
    return {
        "app": facts.app,
        "call_status": status,
        "callid": facts.callid,
        "cdr_field": facts.cdr_field,
        "cli_name": facts.cli_name,
        "cli_number": facts.cli_number,
        "command": outcome.command,
        "command_error": outcome.error,
        "command_id": outcome.command_id,
        "command_result": outcome.result,
        "date_started": facts.date_started,
        "number": facts.number,
        "request_hash": facts.request_hash,
        "variables": dict(variables),
    }


def parse_response(data: Any) -> Command:
    """A RT.Response; CommandError naming the field at fault."""
    if not isinstance(data, dict):
        raise CommandError(
            f'the RT.Response is not a JSON object: expected {{"command": ..., "command_id": ..., '
            f'"params": {{...}}, "variables": {{...}}}}, got {_shown(data)}'
        )
    unknown = sorted(set(data) - {"command", "command_id", "params", "variables"})
    if unknown:
        raise CommandError(
            f"RT.Response: unknown field {unknown[0]!r}; the fields are command, command_id, "
            "params and variables"
        )
    name = data.get("command")
    if not isinstance(name, str) or name not in COMMANDS:
        raise CommandError(
            f"RT.Response.command: {_shown(name)} is not a command; use one of "
            + ", ".join(COMMANDS)
        )
    params = data.get("params")
    params = {} if params is None else params
    if not isinstance(params, dict):
        raise CommandError(f"RT.Response.params: expected an object, got {_shown(params)}")
    variables = data.get("variables")
    variables = {} if variables is None else variables
    if not isinstance(variables, dict):
        raise CommandError(f"RT.Response.variables: expected an object, got {_shown(variables)}")
    return Command(name, data.get("command_id"), params, variables)


# -- commands as native action items ---------------------------------------------------------


def native_entries(command: Command) -> list[Entry]:
    """The native items that run ``command`` (``hangup`` has none: the session ends
    the call); CommandError for a missing or wrong parameter."""
    reader = _Params(command)
    name = command.name
    if name == "play":
        entries = _media(reader.string("media_id", required=True), "media_id")
        reader.finish()
        return entries
    if name == "say":
        params: dict[str, Any] = {
            "text": reader.string("text", required=True),
            "voice": reader.string("voice"),
            "language": reader.string("language"),
        }
        reader.finish()
        return [_entry("say@v1", params)]
    if name == "read":
        return [_read(reader)]
    if name == "record":
        params = {
            "beep": reader.boolean("beep", default=True),
            "max_length": reader.number("max_duration", default=60, low=1, high=3600),
            "silence_timeout": reader.number("silence", default=5, low=0.5, high=600),
            "finish_on_key": "any",
        }
        reader.finish()
        return [_entry("voicemail@v1", params, RESULT)]
    if name == "dialout":
        return [_dialout(reader)]
    if name == "send_dtmf":
        digits = reader.string("digits", required=True) or ""
        reader.finish()
        return [_entry("send-dtmf@v1", {"digits": digits})]
    if name == "wait":
        milliseconds = reader.number("duration_ms", required=True, low=1, high=3_600_000)
        reader.finish()
        return [_entry("pause@v1", {"seconds": milliseconds / 1000})]
    reader.finish()
    return []


def _media(media: str | None, name: str) -> list[Entry]:
    """``media_id``: an http(s) URL, or ``TTS|VOICE|text`` (Callr's text-to-speech media,
    the sdk-go README's ``"TTS|TTS_EN-GB_SERENA|Hello world!"``)."""
    media = media or ""
    if media.startswith("TTS|"):
        parts = media.split("|", 2)
        if len(parts) < 3 or not parts[2].strip():
            raise CommandError(f"params.{name}: {media!r}: a TTS media is TTS|VOICE|text")
        return [_entry("say@v1", {"text": parts[2]})]
    if not media.lower().startswith(("http://", "https://")):
        raise CommandError(f"params.{name}: {media!r} is not an http(s) URL nor TTS|VOICE|text")
    return [_entry("play@v1", {"url": media})]


def _read(reader: _Params) -> Entry:
    prompt: list[Entry] = []
    media = reader.string("media_id")
    if media is not None:
        for item in _media(media, "media_id"):
            kind = "say" if item["action"] == "say@v1" else "play"
            prompt.append({kind: item["params"]})
    seconds = reader.number("timeout_ms", default=5000, low=100, high=600_000) / 1000
    params = {
        "prompt": prompt,
        "max_digits": int(reader.number("max_digits", default=1, low=1, high=128)),
        "attempts": int(reader.number("attempts", default=1, low=1, high=20)),
        "timeout": seconds,
        "inter_digit_timeout": seconds,
        "finish_on_key": reader.string("finish_on_key") or "#",
    }
    reader.finish()
    return _entry("gather@v1", params, RESULT)


def _dialout(reader: _Params) -> Entry:
    targets = reader.raw("targets")
    if not isinstance(targets, list) or not targets:
        raise CommandError(
            'params.targets: expected a list of {"number": ..., "timeout": ...}, got '
            + _shown(targets)
        )
    numbers: list[str] = []
    timeouts: list[float] = []
    for index, target in enumerate(targets):
        number = target.get("number") if isinstance(target, dict) else None
        if not isinstance(number, str) or not number.strip():
            raise CommandError(f"params.targets[{index}].number: expected a number or SIP URI")
        numbers.append(_sip_target(number.strip()))
        timeout = target.get("timeout", 30) if isinstance(target, dict) else 30
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout < 1:
            raise CommandError(f"params.targets[{index}].timeout: expected seconds (>= 1)")
        timeouts.append(float(timeout))
    params = {
        "targets": numbers,
        "caller_id": reader.string("cli"),
        "timeout": reader.number("timeout", default=max(timeouts), low=1, high=600),
        "ringback": "tone" if reader.string("ringtone") in (None, "RING") else "early-media",
    }
    reader.finish()
    return _entry("dial@v1", params, RESULT)


def _sip_target(number: str) -> str:
    if number.lower().startswith(("sip:", "sips:")) or "@" not in number:
        return number
    return f"sip:{number}"


def result_text(command: str, value: Any) -> str:
    """``command_result``: a string (seed: "The command result related to this request")."""
    if command == "dialout" and isinstance(value, dict):
        return DIAL_STATUSES.get(str(value.get("status")), str(value.get("status")).upper())
    if command == "record" and isinstance(value, dict):
        return str(value.get("id") or "")
    if value is None:
        return ""
    return str(value)


def _entry(action: str, params: Mapping[str, Any], result: str | None = None) -> Entry:
    entry: Entry = {"action": action, "params": {k: v for k, v in params.items() if v is not None}}
    if result is not None:
        entry["result"] = result
    return entry


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class _Params:
    """A command's ``params``, read field by field; unknown ones refused at the end."""

    def __init__(self, command: Command) -> None:
        self.command = command
        self.params = command.params
        self.seen: set[str] = set()

    def raw(self, name: str) -> Any:
        self.seen.add(name)
        return self.params.get(name)

    def string(self, name: str, *, required: bool = False) -> str | None:
        value = self.raw(name)
        if value is None:
            if required:
                raise CommandError(f"{self.command.name}: params.{name} is required")
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if not isinstance(value, str):
            raise CommandError(f"params.{name}: expected a string, got {_shown(value)}")
        return value

    def number(
        self,
        name: str,
        *,
        default: float | None = None,
        required: bool = False,
        low: float,
        high: float,
    ) -> float:
        value = self.raw(name)
        if value is None:
            if required or default is None:
                raise CommandError(f"{self.command.name}: params.{name} is required")
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise CommandError(f"params.{name}: expected a number, got {_shown(value)}")
        if not low <= value <= high:
            raise CommandError(f"params.{name}: {value} is out of range ({low:g} to {high:g})")
        return float(value)

    def boolean(self, name: str, *, default: bool) -> bool:
        value = self.raw(name)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise CommandError(f"params.{name}: expected true or false, got {_shown(value)}")
        return value

    def finish(self) -> None:
        unknown = sorted(set(self.params) - self.seen)
        if unknown:
            raise CommandError(
                f"{self.command.name}: unknown parameter params.{unknown[0]}"
                + (f"; it takes {', '.join(sorted(self.seen))}" if self.seen else "; it takes none")
            )

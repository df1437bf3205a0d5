"""Voxology media actions as native action items, checked by the scenario validator.

Each action that does something to the call (SAY, PLAY, COLLECT,
CONFERENCE...) becomes one or more items of the native language
(``say@v1``, ``gather@v1``, ``conference@v1``...) with its parameters
converted: milliseconds to seconds, ``pound`` to ``#``, ``join_muted`` to
``muted`` and so on. The items go through the scenario compiler that YAML
scenarios go through (:func:`~mediaserver.actions.scenario.load_scenario_data`,
handed in by the caller, never imported: the compiler knows every action,
``callflow@v1`` included), and the loop runs them with ``context.run_actions``,
so the builtins' validation and behaviour are the same in both dialects.

Control flow (IF, GOTO, LABEL, FOREACH, assignments, SESSIONDATA,
REDIRECT, WEBHOOK, DIAL) has no item here: the loop interprets it (see
:mod:`.loop`), because it contains Voxology actions or talks to the
application.

:func:`compile_plan` translates every action of a response up front, so a
response whose actions cannot be run is refused before any of it runs.
Relative URLs (PLAY ``url``, CONFERENCE ``hold_audio``) resolve against the
URL the response came from, as REDIRECT's do (seed, REDIRECT); other URLs
must be http(s): a response cannot make the server read its own files.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

from mediaserver.actions.model import ActionItem, ScenarioCompiler
from mediaserver.callflow import model as m
from mediaserver.callflow.actions import ResponseError
from mediaserver.callflow.variables import RESULT
from mediaserver.yamlsource import ProblemsError

Entry = dict[str, Any]
"""One native action item as data: ``{"action": "say@v1", "params": {...}}``."""

RUN = "run"
ANSWERED = "answered"
"""The variant of REJECT once the call is answered (a busy tone, then hang up)."""

NOT_IN_SERVICE = (
    "The number you have reached is not in service. Please check the number and try again."
)
DTMF_TONE_MS = 100
"""How long each key of a PLAY ``dtmf`` sounds; send-dtmf@v1 follows each with 100 ms
of quiet, so a ``dtmf_delay`` below 100 ms is 100 ms."""


class TranslationError(ValueError):
    """An action whose native items do not validate; the message names it."""


def resolve_url(url: str, base: str) -> str:
    """``url`` made absolute against ``base`` (interpolated URLs are left as they are);
    TranslationError unless the result is http(s)."""
    if "${" in url:
        return url
    absolute = urljoin(base, url.strip())
    if not absolute.lower().startswith(("http://", "https://")):
        raise TranslationError(f"{url!r} is not an http(s) URL (nor one relative to {base})")
    return absolute


def _entry(action: str, params: Mapping[str, Any], result: str | None = None) -> Entry:
    entry: Entry = {"action": action, "params": {k: v for k, v in params.items() if v is not None}}
    if result is not None:
        entry["result"] = result
    return entry


def _key(key: str | None) -> str:
    return "none" if key is None else key


def say_prompt(action: m.Say | m.Play | m.Pause, base: str) -> list[Entry]:
    """A COLLECT child action as gather@v1 prompt items."""
    if isinstance(action, m.Pause):
        return [{"pause": action.seconds}]
    if isinstance(action, m.Play):
        return [{"play": {"url": resolve_url(action.url or "", base)}}] * action.repeat
    say = {"text": action.text, "language": action.language, "voice": action.voice}
    return [{"say": {k: v for k, v in say.items() if v is not None}}] * action.repeat


def dtmf_entries(keys: str, delay_ms: int, dash_ms: int, repeat: int) -> list[Entry]:
    """PLAY ``dtmf``: send-dtmf@v1 for the keys, pause@v1 for the gaps.

    Seed, PLAY: "Use a dash - to extend the delay between DTMF tones", each
    dash ``dtmf_dash_delay`` ms, ``dtmf_delay`` ms between tones; spaces are
    ignored ("1 2 3 - 4 -- 5 --- 6").
    """
    entries: list[Entry] = []
    group = ""
    gap = 0
    started = False
    extra = max(0, delay_ms - DTMF_TONE_MS)
    for key in keys.replace(" ", "") * repeat:
        if key == "-":
            gap += dash_ms
            continue
        if started and extra + gap > 0:
            if group:
                entries.append(_entry("send-dtmf@v1", {"digits": group, "duration": 0.1}))
                group = ""
            entries.append(_entry("pause@v1", {"seconds": (extra + gap) / 1000}))
        group += key
        gap = 0
        started = True
    if group:
        entries.append(_entry("send-dtmf@v1", {"digits": group, "duration": 0.1}))
    if gap:
        entries.append(_entry("pause@v1", {"seconds": gap / 1000}))
    if not started:
        raise TranslationError(f"dtmf {keys!r} has no key to play")
    return entries


def play_file(url: str, base: str) -> list[Entry]:
    """RECORDMESSAGE ``play``: the message just recorded (a file of the server)."""
    return [_entry("play@v1", {"url": url})] if url else []


def entries(action: m.Action, base: str) -> dict[str, list[Entry]] | None:
    """The native items of ``action`` by variant (``run``; REJECT adds ``answered``);
    None when they depend on values known only when it runs (an interpolated
    PLAY ``dtmf``, a RECORDMESSAGE ``play``) or it has none (control flow)."""
    if isinstance(action, m.Say):
        params = {
            "text": action.text,
            "repeat": action.repeat,
            "stop_on_key": action.stop_on_key,
            "voice": action.voice,
            "language": action.language,
        }
        return {RUN: [_entry("say@v1", params)]}
    if isinstance(action, m.Play):
        return _play(action, base)
    if isinstance(action, m.Pause):
        return {RUN: [_entry("pause@v1", {"seconds": action.seconds})]}
    if isinstance(action, m.Collect):
        return {RUN: [_collect(action, base)]}
    if isinstance(action, m.Conference):
        return {RUN: [_conference(action, base)]}
    if isinstance(action, m.Transfer):
        return {RUN: [_transfer(action)]}
    if isinstance(action, m.Queue):
        return {RUN: [_queue(action)]}
    if isinstance(action, m.Record):
        return {RUN: [_entry("record@v1", {"command": action.command})]}
    if isinstance(action, m.RecordMessage):
        return _record_message(action)
    if isinstance(action, m.Reject):
        return _reject(action)
    if isinstance(action, m.Hangup):
        return {RUN: [_entry("hangup@v1", {})]}
    if isinstance(action, m.Stop):
        return {RUN: [_entry("stop@v1", {})]}
    if isinstance(action, m.Detect):
        return {RUN: [_entry("detect@v1", {"timeout": action.trigger_seconds}, RESULT)]}
    if isinstance(action, m.Sms):
        params = {
            "to": action.to or "${callerNo}",
            "text": action.message,
            "from": action.sender or "${apiNo || 'mediaserver'}",
        }
        return {RUN: [_entry("message@v1", params)]}
    return None


def _play(action: m.Play, base: str) -> dict[str, list[Entry]] | None:
    if action.url is not None:
        params = {
            "url": resolve_url(action.url, base),
            "repeat": action.repeat,
            "stop_on_key": action.stop_on_key,
        }
        return {RUN: [_entry("play@v1", params)]}
    keys = action.dtmf or ""
    if "${" in keys:
        return None
    return {RUN: dtmf_entries(keys, action.dtmf_delay_ms, action.dtmf_dash_delay_ms,
                              action.repeat)}  # fmt: skip


def _collect(action: m.Collect, base: str) -> Entry:
    prompt = [item for child in action.prompt for item in say_prompt(child, base)]
    seconds = action.timeout_ms / 1000
    params = {
        "prompt": prompt,
        "max_digits": action.num_digits,
        "timeout": seconds,  # seed: "How long in milliseconds to wait for the next key press"
        "inter_digit_timeout": seconds,
        "finish_on_key": _key(action.finish_on_key),
    }
    return _entry("gather@v1", params)


def _conference(action: m.Conference, base: str) -> Entry:
    hold = None if action.hold_audio is None else resolve_url(action.hold_audio, base)
    params = {
        "name": action.room,
        "muted": action.join_muted,
        "moderator": action.start_on_join,
        "wait_for_moderator": action.hold_on_join,
        "end_on_exit": action.end_on_exit,
        "beep": "both" if action.beep else "none",
        "hold_audio": hold,
        "max_participants": action.max_participants,
        "exit_on_key": _key(action.exit_on_key),
        "mute_on_key": _key(action.mute_on_key),
        "unmute_on_key": _key(action.unmute_on_key),
        "hold_on_exit": action.hold_on_exit,
        "send_dtmf": action.send_dtmf,
        "receive_dtmf": action.receive_dtmf,
    }
    return _entry("conference@v1", params, RESULT)


QUEUE_COMMANDS = {
    "offer": "enqueue",
    "poll": "release-next",
    "poll_connect": "bridge-next",
    "remove": "leave",
}
"""Seed, QUEUE ``event`` -> queue@v1 ``command``."""


def _queue(action: m.Queue) -> Entry:
    params: dict[str, Any] = {"name": action.queue, "command": QUEUE_COMMANDS[action.event]}
    if action.event == "offer":
        params["max_calls"] = action.max_calls
        params["wait"] = not action.is_async
    return _entry("queue@v1", params, RESULT)


def _transfer(action: m.Transfer) -> Entry:
    """Seed, TRANSFER: ``start`` bridges the caller to ``no`` (dial@v1), ``async``
    without waiting and without ringback (the flow's own audio plays meanwhile);
    ``stop`` hangs up the call of an async TRANSFER (stop@v1 ``dial``)."""
    if action.event == "stop":
        return _entry("stop@v1", {"dial": True})
    params: dict[str, Any] = {"targets": [sip_target(action.number)], "caller_id": action.caller_id}
    if action.is_async:
        params.update(wait=False, ringback="none")
    return _entry("dial@v1", params)


def _record_message(action: m.RecordMessage) -> dict[str, list[Entry]] | None:
    if action.command in ("save", "discard"):
        return {RUN: []}
    if action.command == "play":
        return None
    params = {
        "beep": True,  # a voicemail-type system: the caller is told when to speak
        "max_length": action.max_seconds,
        "silence_timeout": action.silence_seconds,
        "finish_on_key": _key(action.finish_on_key),
    }
    return {RUN: [_entry("voicemail@v1", params)]}


def _reject(action: m.Reject) -> dict[str, list[Entry]]:
    """Seed, REJECT: "Depending on the reason given, a busy-signal or not-in-service
    message will be played": before the answer as a SIP status (486 busy, 404 for
    disconnected), after it as a busy tone or a spoken message, then a hang-up."""
    if action.reason == "busy":
        return {
            RUN: [_entry("reject@v1", {"reason": "busy"})],
            ANSWERED: [
                _entry("play@v1", {"tone": "busy"}),
                _entry("hangup@v1", {"reason": "busy"}),
            ],
        }
    return {
        RUN: [_entry("reject@v1", {"reason": "not_found"})],
        ANSWERED: [_entry("say@v1", {"text": NOT_IN_SERVICE}), _entry("hangup@v1", {})],
    }


def sip_target(number: str) -> str:
    """TRANSFER ``no``: a number, or ``abc123@sip.mypbx.com`` (a SIP URI without its scheme)."""
    if "${" in number or "@" not in number or number.lower().startswith(("sip:", "sips:")):
        return number
    return f"sip:{number}"


def build_items(entries: list[Entry], compile_scenario: ScenarioCompiler) -> tuple[ActionItem, ...]:
    """Native items from entries, through the scenario compiler (the validator);
    TranslationError with the validator's messages when they do not validate."""
    if not entries:
        return ()
    data = {"branches": {"inbound-call": {"actions": entries}}}
    try:
        scenario = compile_scenario(data, "callflow.json")
    except ProblemsError as exc:
        raise TranslationError("; ".join(p.message for p in exc.problems)) from None
    return scenario.branches["inbound-call"].actions


@dataclass
class Plan:
    """A response with the native items of each of its actions, by variant."""

    response: m.Response
    base_url: str
    items: dict[int, dict[str, tuple[ActionItem, ...]]] = field(default_factory=dict)

    def variants(self, action: m.Action) -> dict[str, tuple[ActionItem, ...]] | None:
        return self.items.get(id(action))


def compile_plan(response: m.Response, base_url: str, compile_scenario: ScenarioCompiler) -> Plan:
    """Translate every action of ``response``; ResponseError naming each one that fails."""
    plan = Plan(response, base_url)
    problems: list[str] = []
    for action in m.walk(response.actions):
        try:
            variants = entries(action, base_url)
            if variants is not None:
                plan.items[id(action)] = {
                    name: build_items(found, compile_scenario) for name, found in variants.items()
                }
        except TranslationError as exc:
            problems.append(f"{action.where}: {exc}")
    if problems:
        raise ResponseError(problems)
    return plan

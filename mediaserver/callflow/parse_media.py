"""Parsing the media actions of a response: SAY, PLAY, PAUSE, COLLECT, CONFERENCE,
TRANSFER, DIAL, QUEUE, RECORD, RECORDMESSAGE, REJECT, HANGUP, STOP, DETECT, SMS.

One function per type (seed, "Actions", each type's "Response" table): it
reads the action's fields through an :class:`~.fields.ActionReader`,
converts units (the seed's milliseconds stay milliseconds here, converted
when translated) and key names, and refuses what the server cannot honour
with the reason (each is listed in docs/callflow.md).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from mediaserver.actions.key_combinations import combination_problem
from mediaserver.callflow import model as m
from mediaserver.callflow.fields import NAME, NAME_HINT, ActionReader, Fields
from mediaserver.media.conference import ROOM_CAPACITY

LANGUAGES = {
    "english": "en-US",
    "englishus": "en-US",
    "englishgb": "en-GB",
    "french": "fr-FR",
    "german": "de-DE",
    "italian": "it-IT",
    "japanese": "ja",
    "portuguese": "pt-BR",
    "spanish": "es-ES",
}
"""SAY ``language`` names (seed) -> language tags; a tag such as ``fr-CA`` is taken too."""
_LANGUAGE_TAG = r"[a-zA-Z]{2,3}(-[a-zA-Z0-9]{1,8})*"
_MAX_REPEAT = 100
_MAX_MS = 3_600_000
"""COLLECT's longest timeout: gather@v1's hour (the seed's async TRANSFER waits an hour)."""
_MAX_QUEUE = 1_000_000
"""The largest QUEUE ``max_calls`` taken (the seed's default is "infinity")."""


def _say(a: ActionReader) -> m.Say:
    p = a.params
    repeat = p.integer("repeat", 1, 1, _MAX_REPEAT)
    if p.has("loop"):  # the seed's first examples write "loop" for "repeat"
        if p.has("repeat"):
            p.add("loop", "give repeat or loop, not both")
        repeat = p.integer("loop", 1, 1, _MAX_REPEAT)
    voice = p.string("voice", choices=("Kate", "Kevin", "Watson"))
    gender = p.string("gender", choices=("female", "male"))
    language = p.string("language")
    tag = None
    if language is not None:
        tag = LANGUAGES.get(language.lower())
        if tag is None and re.fullmatch(_LANGUAGE_TAG, language):
            tag = language
        elif tag is None:
            p.add("language", f"{language!r} is not {', '.join(LANGUAGES)} or a language tag")
    action = m.Say(
        a.path,
        a.name,
        text=p.string("text", required=True, template=True) or "",
        repeat=repeat,
        stop_on_key=p.boolean("stop_on_key", False),
        voice=gender or ("male" if voice == "Kevin" else "female" if voice else None),
        language=tag,
    )
    a.finish()
    return action


def _play(a: ActionReader) -> m.Play:
    p = a.params
    url = p.string("url", template=True)
    dtmf = p.string("dtmf", template=True)
    if not p.has("url") and not p.has("dtmf"):
        p.add("url", "give url (an audio file) or dtmf (keys to play)")
    elif p.has("url") and p.has("dtmf"):
        p.add("dtmf", "give url or dtmf, not both")
    if dtmf is not None and "${" not in dtmf and not re.fullmatch(r"[0-9#*\- ]+", dtmf):
        p.add("dtmf", f"{dtmf!r}: use 0-9, #, * and - (a longer pause)")
    action = m.Play(
        a.path,
        a.name,
        url=url,
        dtmf=dtmf,
        repeat=p.integer("repeat", 1, 1, _MAX_REPEAT),
        stop_on_key=p.boolean("stop_on_key", False),
        dtmf_delay_ms=p.integer("dtmf_delay", 250, 0, 60_000, "milliseconds"),
        dtmf_dash_delay_ms=p.integer("dtmf_dash_delay", 250, 0, 60_000, "milliseconds"),
    )
    a.finish()
    return action


def _pause(a: ActionReader) -> m.Pause:
    seconds = a.params.number("seconds", 5.0, 0, 3600, "seconds")
    a.finish()
    return m.Pause(a.path, a.name, seconds=seconds)


def _collect(a: ActionReader) -> m.Collect:
    p = a.params
    prompt: list[m.Say | m.Play | m.Pause] = []
    for child in a.actions("actions"):
        if isinstance(child, m.Say | m.Pause) or (isinstance(child, m.Play) and child.url):
            prompt.append(child)
        else:
            a.problems.append(
                f"{child.where}: a COLLECT's actions are SAY, PLAY (url) and PAUSE only"
            )
    action = m.Collect(
        a.path,
        a.name,
        num_digits=p.integer("num_digits", 1, 1, 128),
        timeout_ms=p.integer("timeout", 5000, 0, _MAX_MS, "milliseconds"),
        finish_on_key=p.key("finish_on_key", "#"),
        prompt=tuple(prompt),
    )
    a.finish("actions")
    return action


CONFERENCE_EVENTS = (
    "on_enter_started",
    "on_enter_waiting",
    "on_enter_alone",
    "on_enter",
    "on_enter_error_max_participants",
    "on_enter_error_ended",
    "on_enter_error",
)
"""Seed, CONFERENCE "Events" (``on_enter_error_ended`` never runs here: a room that
ended is forgotten, and the next caller giving its name starts a new one)."""


def _conference(a: ActionReader) -> m.Conference:
    p = a.params
    room = p.string("name", required=True, pattern=NAME, hint=NAME_HINT, template=True)
    mute = p.combination("mute_on_key")
    unmute = p.combination("unmute_on_key")
    exit_key = p.combination("exit_on_key")
    problem = combination_problem(exit_key, mute, unmute)
    if problem is not None:
        p.add(*problem)
    announce = p.string("announce_on_join", choices=("beep",))
    p.boolean("auto_hold", False)  # hold_audio plays whenever the caller is alone
    action = m.Conference(
        a.path,
        a.name,
        room=room or "",
        hold_audio=p.string("hold_audio", template=True),
        join_muted=p.boolean("join_muted", False),
        max_participants=_optional_int(p, "max_participants", 1, ROOM_CAPACITY),
        beep=announce == "beep",
        mute_on_key=mute,
        unmute_on_key=unmute,
        exit_on_key=exit_key,
        hold_on_join=p.boolean("hold_on_join", False),
        start_on_join=p.boolean("start_on_join", True),
        end_on_exit=p.boolean("end_on_exit", False),
        hold_on_exit=p.boolean("hold_on_exit", False),
        send_dtmf=p.boolean("send_dtmf", False),
        receive_dtmf=p.boolean("receive_dtmf", False),
        events=a.events(CONFERENCE_EVENTS),
    )
    a.finish("events")
    return action


def _transfer(a: ActionReader) -> m.Transfer:
    p = a.params
    event = p.string("event", default="start", choices=("start", "stop")) or "start"
    is_async = p.boolean("async", False)
    # Seed: "The stop event will disconnect the transfer": it needs no number.
    number = p.string("no", required=event == "start", template=True)
    caller_id = p.string("caller_id_no", template=True)
    if event == "stop" and is_async:
        p.add("async", "a TRANSFER stop does not wait for anything: leave async out")
    action = m.Transfer(
        a.path,
        a.name,
        number=number or "",
        caller_id=caller_id,
        event=event,
        is_async=is_async,
    )
    a.finish()
    return action


DETECTIONS = ("none", "preconnect", "full")
"""Seed, DIAL ``detection``: "How to identify a connection"."""


def _dial(a: ActionReader) -> m.Dial:
    p = a.params
    p.string("inbound_api", choices=("CallFlows",))
    data = a.top.data("session_data")
    if p.has("session_data"):
        if a.top.has("session_data"):
            p.add("session_data", "give session_data next to type or in params, not both")
        data = p.data("session_data")
    action = m.Dial(
        a.path,
        a.name,
        number=p.string("no", required=True, template=True) or "",
        caller_id=p.string("caller_id_no", template=True),
        timeout=p.number("timeout", 50.0, 20, 240, "seconds"),
        session_data=data,
        detection=p.string("detection", default="none", choices=DETECTIONS) or "none",
        max_call_time=p.number("max_call_time", 86400.0, 60, 172_800, "seconds"),
        override_config=p.string("override_callback_config", template=True),
        events=a.events(("on_error",)),
    )
    a.finish("events", "session_data")
    return action


def _queue(a: ActionReader) -> m.Queue:
    p = a.params
    event = p.string("event", default="offer", choices=("offer", "poll", "poll_connect", "remove"))
    is_async = p.boolean("async", False)
    if is_async and event != "offer":
        p.add("async", f"only offer can be asynchronous (seed), not {event!r}")
    max_calls = _optional_int(p, "max_calls", 1, _MAX_QUEUE)
    if max_calls is not None and event != "offer":
        p.add("max_calls", f"max_calls applies to offer, not {event!r}")
    action = m.Queue(
        a.path,
        a.name,
        queue=p.string("name", required=True, pattern=NAME, hint=NAME_HINT, template=True) or "",
        event=event or "offer",
        is_async=is_async,
        max_calls=max_calls,
        events=a.events(("on_enter", "on_enter_error_max_calls", "on_enter_error")),
    )
    a.finish("events")
    return action


def _record(a: ActionReader) -> m.Record:
    p = a.params
    action = m.Record(
        a.path,
        a.name,
        command=p.string("action", default="start", choices=("start", "stop", "pause", "resume"))
        or "start",
        group=p.string("group"),
    )
    a.finish()
    return action


def _record_message(a: ActionReader) -> m.RecordMessage:
    p = a.params
    command = p.string("action", default="start", choices=("start", "play", "discard", "save"))
    action = m.RecordMessage(
        a.path,
        a.name,
        command=command or "start",
        finish_on_key=p.key("finish_on_key", "any", others=("any", "off")),
        group=p.string("group"),
        max_seconds=p.number("max_recording_time", 30.0, 1, 3600, "seconds"),
        silence_seconds=p.number("timeout", 5.0, 1, 60, "seconds"),
        events=a.events(("on_save", "on_error")),
    )
    a.finish("events")
    return action


def _reject(a: ActionReader) -> m.Reject:
    reason = a.params.string("reason", default="busy", choices=("busy", "disconnected"))
    a.finish()
    return m.Reject(a.path, a.name, reason=reason or "busy")


def _hangup(a: ActionReader) -> m.Hangup:
    a.finish()
    return m.Hangup(a.path, a.name)


def _stop(a: ActionReader) -> m.Stop:
    a.params.string("actions", choices=("AUDIO",))
    a.finish()
    return m.Stop(a.path, a.name)


def _detect(a: ActionReader) -> m.Detect:
    ms = a.params.integer("trigger_live_in_ms", 3000, 1000, 30_000, "milliseconds")
    action = m.Detect(
        a.path,
        a.name,
        trigger_seconds=ms / 1000,
        events=a.events(("on_live_person", "on_voicemail", "on_voicemail_early")),
    )
    a.finish("events")
    return action


def _sms(a: ActionReader) -> m.Sms:
    p = a.params
    action = m.Sms(
        a.path,
        a.name,
        message=p.string("message", required=True, template=True) or "",
        to=p.string("no", template=True),
        sender=p.string("caller_id_no", template=True),
    )
    a.finish()
    return action


def _optional_int(p: Fields, key: str, low: int, high: int) -> int | None:
    if not p.has(key):
        p._take(key)
        return None
    return p.integer(key, high, low, high)


PARSERS: dict[str, Callable[[ActionReader], m.Action]] = {
    "SAY": _say,
    "PLAY": _play,
    "PAUSE": _pause,
    "COLLECT": _collect,
    "CONFERENCE": _conference,
    "TRANSFER": _transfer,
    "DIAL": _dial,
    "QUEUE": _queue,
    "RECORD": _record,
    "RECORDMESSAGE": _record_message,
    "REJECT": _reject,
    "HANGUP": _hangup,
    "STOP": _stop,
    "DETECT": _detect,
    "SMS": _sms,
}

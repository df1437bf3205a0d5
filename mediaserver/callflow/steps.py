"""The actions the Call Flow Loop runs itself, and the bookkeeping around media ones.

Control flow (IF, FOREACH, GOTO, LABEL, assignments, SESSIONDATA, REDIRECT)
contains Voxology actions or changes the loop, so it runs here against the
run's sandbox; WEBHOOK and DIAL talk to the application and the server.
COLLECT, CONFERENCE, QUEUE, RECORD, RECORDMESSAGE and DETECT run their
native items through :meth:`CallFlow.guarded` and then do what the seed
adds: ``$collectAttempt``, ``$keyPresses`` and ``key_presses``, event
handlers, ``recordings``, ``detection``. Each function takes the flow and the
action (the response's plan is ``flow.plan``); :data:`HANDLERS` maps action
types to them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from mediaserver.actions.amd import DETECT_CONFIG, MachineDetection
from mediaserver.actions.callapi import CallEnded
from mediaserver.actions.expressions import ExpressionError
from mediaserver.actions.interpreter import Jump, entries
from mediaserver.callflow import model as m
from mediaserver.callflow.callback import Callback, HttpFailure, Redirected, background
from mediaserver.callflow.requests import Webhook
from mediaserver.callflow.route import callflow_scenario, route_url
from mediaserver.callflow.translate import (
    RUN,
    TranslationError,
    play_file,
    resolve_url,
    sip_target,
)
from mediaserver.callflow.variables import (
    COLLECT_ATTEMPT,
    KEY_PRESSES,
    LAST_QUEUE_POLL_CONNECT_CALL,
    NUM_CONFERENCE_PARTICIPANTS,
    PARENT_CALL_ID,
    SESSION_DATA,
    WEBHOOK_DATA,
)

if TYPE_CHECKING:
    from mediaserver.callflow.loop import CallFlow

_WEBHOOK_TIMEOUT = 30.0
"""Seed, WEBHOOK: "The request timeout is 30 seconds" (when nothing waits for it)."""
T = TypeVar("T")
_DETECTION = {"human": "live_person", "machine": "voicemail", "not_sure": "unknown"}
GREETING_SECONDS = 20.0
"""How long DETECT waits at most for a machine's greeting to end (detect@v1's default)."""


async def run_if(flow: CallFlow, action: m.If) -> None:
    try:
        chosen = flow.context.sandbox.test(action.condition)
    except ExpressionError as exc:
        raise flow.error("no_actions", f"{action.where}: condition: {exc}") from None
    await flow.run_list(action.then if chosen else action.or_else)


async def run_foreach(flow: CallFlow, action: m.Foreach) -> None:
    """Seed, FOREACH: each value, key and index of the iterator's array or object."""
    pairs = entries(flow.evaluate(action, action.iterator))
    if pairs is None:
        message = f"{action.where}: params.iterator is not an array or an object"
        raise flow.error("no_actions", message)
    for index, (key, value) in enumerate(pairs):
        flow.assign(action, action.value_var, value)
        flow.assign(action, action.key_var, key)
        flow.assign(action, action.index_var, index)
        await flow.run_list(action.then)


async def run_goto(flow: CallFlow, action: m.Goto) -> None:
    raise Jump(flow.text(action, action.label))


async def run_label(flow: CallFlow, action: m.Label) -> None:
    return None


async def run_assignments(flow: CallFlow, action: m.Assign) -> None:
    for target, value in action.pairs:
        result = flow.evaluate(action, value) if isinstance(value, str) else value
        flow.assign(action, target, result)


async def run_session_data(flow: CallFlow, action: m.SessionData) -> None:
    value = action.value
    if isinstance(value, str):
        value = flow.evaluate(action, value)
    if value is not None and not isinstance(value, dict):
        raise flow.error("no_actions", f"{action.where}: session_data is not an object")
    flow.assign(action, SESSION_DATA, value if value is not None else {})


async def run_redirect(flow: CallFlow, action: m.Redirect) -> None:
    """Seed, REDIRECT: "changes the url, method, headers and/or content_type of all
    subsequent callbacks"; relative URLs resolve against the current one."""
    try:
        url = resolve_url(flow.text(action, action.url), flow.callback.url)
    except TranslationError as exc:
        raise flow.error("no_actions", f"{action.where}: params.url: {exc}") from None
    method = flow.callback.method
    if action.method is not None:
        method = flow.text(action, action.method).strip().upper()
        if method not in ("POST", "PUT", "GET"):
            message = f"{action.where}: params.method: {method!r} is not POST, PUT or GET"
            raise flow.error("no_actions", message)
    headers = flow.callback.headers if action.headers is None else action.headers
    flow.callback = dataclasses.replace(flow.callback, url=url, method=method, headers=headers)
    flow.context.sandbox.assign("$config", flow.callback.config())
    flow.log.info("call flow redirected", url=url, method=method)
    raise Redirected()


async def run_collect(flow: CallFlow, action: m.Collect) -> None:
    """Seed, COLLECT and "Native Constants": ``$collectAttempt`` counts the visits
    of each COLLECT (from 1); ``$keyPresses`` and ``key_presses`` get the digits."""
    key: object = action.name if action.name else (flow.responses, action.path)
    attempt = flow.attempts.get(key, 0) + 1
    flow.attempts[key] = attempt
    flow.context.sandbox.assign(COLLECT_ATTEMPT, attempt)
    variants = flow.plan.variants(action) or {}
    await flow.guarded(action, variants.get(RUN, ()))
    digits = flow.context.sandbox.get("$digits")
    digits = digits if isinstance(digits, str) else ""
    flow.state.collected(action.name, digits)
    flow.context.sandbox.assign(KEY_PRESSES, digits)


async def run_conference(flow: CallFlow, action: m.Conference) -> None:
    """Seed, CONFERENCE "Events": as the caller enters (before joining: the room
    cannot run actions for one participant), ``on_enter_waiting`` (the room is on
    hold for this caller) or ``on_enter_started``, ``on_enter_alone`` (nobody else
    is in), then the catch-all ``on_enter`` last; the error handlers instead when
    the room is full. ``$numConferenceParticipants`` counts the room as the caller
    enters (the caller included) and again once the caller left."""
    name = flow.text(action, action.room).strip()
    call = flow.context.call
    entry = call.conference_entry(
        name, moderator=action.start_on_join, wait_for_moderator=action.hold_on_join
    )
    full = action.max_participants is not None and entry.participants >= action.max_participants
    flow.context.sandbox.assign(
        NUM_CONFERENCE_PARTICIPANTS, str(entry.participants + (0 if full else 1))
    )
    if not full:
        await flow.run_list(action.events.get("on_enter_waiting" if entry.waiting
                                              else "on_enter_started"))  # fmt: skip
        if entry.participants == 0:
            await flow.run_list(action.events.get("on_enter_alone"))
        await flow.run_list(action.events.get("on_enter"))
        variants = flow.plan.variants(action) or {}
        ok, outcome = await flow.guarded(action, variants.get(RUN, ()), "on_enter_error")
        left = call.conference_entry(name, moderator=True, wait_for_moderator=False)
        flow.context.sandbox.assign(NUM_CONFERENCE_PARTICIPANTS, str(left.participants))
        if not ok or outcome != "full":
            return
    await flow.run_list(action.events.get("on_enter_error_max_participants"))
    await flow.run_list(action.events.get("on_enter_error"))


async def run_queue(flow: CallFlow, action: m.Queue) -> None:
    """Seed, QUEUE: ``on_enter`` when an offer is accepted (before it waits),
    ``on_enter_error_max_calls`` then ``on_enter_error`` when the queue already has
    ``max_calls``; ``on_enter_error`` when a poll or poll_connect finds it empty."""
    variants = flow.plan.variants(action) or {}
    if action.event == "offer":
        size = flow.context.call.queue_size(flow.text(action, action.queue).strip())
        if action.max_calls is not None and size >= action.max_calls:
            await _queue_full(flow, action)
            return
        if not action.is_async:
            await flow.run_list(action.events.get("on_enter"))
    ok, outcome = await flow.guarded(action, variants.get(RUN, ()), "on_enter_error")
    if not ok:
        return
    if action.event == "poll_connect":
        _remember_poll_connect(flow)
    if outcome == "full":
        await _queue_full(flow, action)
    elif outcome == "queued":
        await flow.run_list(action.events.get("on_enter"))
    elif outcome == "empty":
        await flow.run_list(action.events.get("on_enter_error"))


def _remember_poll_connect(flow: CallFlow) -> None:
    """Seed: ``$lastQueuePollConnectCall`` and ``last_queue_poll_connect_call``, "the
    last call bridged with a QUEUE poll_connect", with its ``id`` and ``no`` (its far
    end, as ``caller_no`` would be in its own requests)."""
    queue = flow.context.sandbox.get("$queue")
    caller = queue.get("caller") if isinstance(queue, dict) else None
    if not isinstance(caller, dict):
        return
    outbound = caller.get("direction") == "outbound"
    bridged = {"id": caller.get("id"), "no": caller.get("to" if outbound else "from")}
    flow.state.last_queue_poll_connect_call = bridged
    flow.context.sandbox.assign(LAST_QUEUE_POLL_CONNECT_CALL, bridged)


async def _queue_full(flow: CallFlow, action: m.Queue) -> None:
    flow.log.info("call flow queue full", path=action.path, max_calls=action.max_calls)
    await flow.run_list(action.events.get("on_enter_error_max_calls"))
    await flow.run_list(action.events.get("on_enter_error"))


async def run_record(flow: CallFlow, action: m.Record) -> None:
    variants = flow.plan.variants(action) or {}
    ok, _ = await flow.guarded(action, variants.get(RUN, ()))
    recording = flow.context.sandbox.get("$recording")
    if ok and action.command == "start" and isinstance(recording, dict):
        flow.state.recorded(action.name, str(recording.get("id")))


async def run_record_message(flow: CallFlow, action: m.RecordMessage) -> None:
    if action.command == "save":
        # Messages are kept as soon as they are recorded: saving is running on_save.
        await flow.run_list(action.events.get("on_save"))
        return
    if action.command == "discard":
        await _discard(flow, action)
        return
    if action.command == "play":
        path = flow.message_path
        if path is None:
            raise flow.error("no_actions", f"{action.where}: no message recorded yet")
        items = flow.build(action, lambda: play_file(path, flow.callback.url))
        await flow.guarded(action, items, "on_error")
        return
    variants = flow.plan.variants(action) or {}
    ok, _ = await flow.guarded(action, variants.get(RUN, ()), "on_error")
    recording = flow.context.sandbox.get("$recording")
    if ok and isinstance(recording, dict):
        flow.state.recorded(action.name, str(recording.get("id")))
        flow.message_path = str(recording.get("path"))
        flow.message_id = str(recording.get("id"))


async def _discard(flow: CallFlow, action: m.RecordMessage) -> None:
    """Seed, RECORDMESSAGE: recordings are saved "by ending the call before a
    RECORDMESSAGE with discard": discard deletes the last message (file and index) and
    takes it out of ``recordings``; with no message, ``on_error`` or the error."""
    rid = flow.message_id
    if rid is None or not await flow.context.call.discard_recording(rid):
        if action.events.get("on_error"):
            await flow.run_list(action.events.get("on_error"))
            return
        raise flow.error("no_actions", f"{action.where}: no message recorded to discard")
    flow.state.discarded(rid)
    flow.message_id = flow.message_path = None


async def run_detect(flow: CallFlow, action: m.Detect) -> None:
    """Seed, DETECT: ``on_live_person`` for a person (or no verdict within
    ``trigger_live_in_ms``); for a machine, ``on_voicemail_early`` "as soon as a
    voicemail system is detected", then ``on_voicemail`` once it "indicates that it is
    ready to record a voice message (for example, after the 'beep')": the shared
    detector goes on listening while the early handler runs, until the greeting ends
    (a beep, or silence) or :data:`GREETING_SECONDS` pass."""
    await flow.answer()
    config = dataclasses.replace(
        DETECT_CONFIG,
        total_analysis_time_millis=round(action.trigger_seconds * 1000),
        greeting_total_analysis_time_millis=round(GREETING_SECONDS * 1000),
    )
    async with MachineDetection(flow.context.call, config, follow_greeting=True) as amd:
        detection = await _heard(flow, action, amd.detection())
        flow.state.detection = _DETECTION.get(detection.result, "unknown")
        flow.log.info("call flow detection", detection=flow.state.detection,
                      reason=detection.reason)  # fmt: skip
        if detection.result == "machine":
            await flow.run_list(action.events.get("on_voicemail_early"))
            greeting = await _heard(flow, action, amd.greeting_end())
            flow.log.info("call flow voicemail greeting ended",
                          result=None if greeting is None else greeting.result)  # fmt: skip
    if detection.result == "machine":
        await flow.run_list(action.events.get("on_voicemail"))
    else:
        await flow.run_list(action.events.get("on_live_person"))


async def _heard(flow: CallFlow, action: m.Detect, result: Awaitable[T]) -> T:
    """A detector's result; the call flow error when the listening failed."""
    try:
        return await result
    except CallEnded:
        raise
    except Exception as exc:
        raise flow.error("no_actions", f"{action.where}: detection failed: {exc}") from None


async def run_webhook(flow: CallFlow, action: m.Webhook) -> None:
    """Seed, WEBHOOK: a callback request with ``is_webhook``, ``event_name`` and
    ``webhook_data``; it waits for the answer only with ``await_response`` or an
    ``on_error`` handler, and a JSON answer becomes ``$webhookData``."""
    url = flow.callback.url
    if action.url is not None:
        try:
            url = resolve_url(flow.text(action, action.url), flow.callback.url)
        except TranslationError as exc:
            raise flow.error("no_actions", f"{action.where}: params.url: {exc}") from None
    data = action.data
    if isinstance(data, str):
        data = flow.evaluate(action, data)
    target = Callback(
        url,
        action.method or flow.callback.method,
        flow.callback.headers if action.headers is None else action.headers,
        action.timeout,
    )
    body = flow.body("live_call", flow.live_status(), Webhook(action.event_name, data or {}))
    on_error = action.events.get("on_error")
    if not (action.await_response or on_error):
        background(
            _webhook_later(flow, body, dataclasses.replace(target, timeout=_WEBHOOK_TIMEOUT))
        )
        return
    try:
        response = await flow.send(body, target)
        ok = 200 <= response.status < 300
    except HttpFailure as failure:
        flow.log.info("call flow webhook failed", reason=failure.message)
        ok, response = False, None
    if ok and response is not None and not isinstance(response.body, str):
        flow.context.sandbox.assign(WEBHOOK_DATA, response.body)
    if not ok:
        await flow.run_list(on_error)


async def _webhook_later(flow: CallFlow, body: Any, target: Callback) -> None:
    try:
        await flow.send(body, target)
    except HttpFailure as failure:
        flow.log.info("call flow webhook failed", reason=failure.message)


async def run_dial(flow: CallFlow, action: m.Dial) -> None:
    """Seed, DIAL: a new, independent call, whose own call flow (this flow's URL,
    method and headers) starts when it is answered; this flow goes on at once."""
    number = sip_target(flow.text(action, action.number))
    caller_id = None if action.caller_id is None else flow.text(action, action.caller_id)
    data = action.session_data
    if isinstance(data, str):
        data = flow.evaluate(action, data)
    if data is not None and not isinstance(data, dict):
        raise flow.error("no_actions", f"{action.where}: session_data is not an object")
    cb: Callback | None = flow.callback
    if action.override_config is not None:
        cb = _override_config(flow, action, flow.text(action, action.override_config))
    elif caller_id:
        # Seed: the new call runs "the given CallFlow config, based on the caller_id_no":
        # that number's callflow: route when it has one, else this flow's.
        cb = _number_config(flow, caller_id) or cb
    if cb is None:
        await flow.run_list(action.events.get("on_error"))
        return
    scenario = callflow_scenario(
        flow.compile,
        cb.url,
        cb.method,
        cb.headers,
        cb.timeout,
        failover=cb.failover,
        detection=action.detection,
        max_call_time=action.max_call_time,
    )
    variables = {SESSION_DATA: data or {}, PARENT_CALL_ID: flow.facts.call_id}
    try:
        run_id = await flow.context.server.start_call(
            number,
            scenario,
            caller_id=caller_id or flow.facts.api_no,
            variables=variables,
            timeout=action.timeout,
        )
    except ValueError as exc:
        flow.log.info("call flow dial failed", number=number, reason=str(exc))
        await flow.run_list(action.events.get("on_error"))
        return
    flow.log.info("call flow dialled", number=number, run_id=run_id)


def _number_config(flow: CallFlow, number: str) -> Callback | None:
    """A number's Callback Config: its ``callflow:URL`` route (POST, no headers, this
    flow's timeout); None when it is routed elsewhere or not at all."""
    url = route_url(flow.context.server.route_of(number) or "")
    return None if url is None else Callback(url, "POST", (), flow.callback.timeout)


def _override_config(flow: CallFlow, action: m.Dial, number: str) -> Callback | None:
    """Seed, DIAL ``override_callback_config``: "this number will be used to load a
    Callback Config": here the ``callflow:URL`` route of that number (POST, no headers,
    this flow's timeout). None, logged, when the number has no such route (on_error runs);
    the call flow error when there is no on_error."""
    found = _number_config(flow, number)
    if found is not None:
        return found
    target = flow.context.server.route_of(number) or ""
    reason = (
        f"{action.where}: params.override_callback_config: {number!r} is not routed to a "
        f"callflow: URL (route: {target or 'none'}); route it to callflow:URL in the config"
    )
    if action.events.get("on_error"):
        flow.log.info("call flow dial failed", reason=reason)
        return None
    raise flow.error("no_actions", reason)


Handler = Callable[["CallFlow", Any], Awaitable[None]]
HANDLERS: dict[type[m.Action], Handler] = {
    m.If: run_if,
    m.Foreach: run_foreach,
    m.Goto: run_goto,
    m.Label: run_label,
    m.Assign: run_assignments,
    m.SessionData: run_session_data,
    m.Redirect: run_redirect,
    m.Collect: run_collect,
    m.Conference: run_conference,
    m.Queue: run_queue,
    m.Record: run_record,
    m.RecordMessage: run_record_message,
    m.Detect: run_detect,
    m.Webhook: run_webhook,
    m.Dial: run_dial,
}
"""The actions the loop does not simply run as native items."""

"""``fork@v1``: copy the call's RTP to UDP receivers while the call goes on (Telnyx's fork).

``rx`` gets every packet the caller sends, ``tx`` every packet the caller
receives (prompts, the callee of a ``dial@v1``, a conference), as plain RTP;
``target`` gets both, each behind a STREP header telling the direction. The
action returns at once; the fork runs until ``stop: true``, a new ``fork@v1``
(which replaces it), or the end of the call. Destinations are ``udp:IP:PORT``
or ``IP:PORT``; literal ones are checked when the scenario loads, interpolated
ones when the action runs. See :mod:`mediaserver.media.fork`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mediaserver.actions.callapi import MediaError
from mediaserver.actions.definition import ActionContext, ActionDefinition, ActionFailed
from mediaserver.actions.expressions import Template
from mediaserver.actions.params import Param, ParamType
from mediaserver.media.fork import STREAM_TYPES, ForkError, fork_targets, parse_address

_DESTINATIONS = ("rx", "tx", "target")


async def fork(context: ActionContext, params: Mapping[str, Any]) -> None:
    call = context.call
    if params["stop"]:
        try:
            call.fork_stop()
        except MediaError as exc:
            raise ActionFailed(str(exc)) from None
        return
    given = {
        name: context.sandbox.interpolate(params[name]).strip()
        for name in _DESTINATIONS
        if params[name] is not None
    }
    try:
        call.fork_start(**given, stream_type=params["stream_type"])
    except ForkError as exc:
        raise ActionFailed(str(exc)) from None


def _check(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    given = [name for name in _DESTINATIONS if params[name] is not None]
    if params["stop"]:
        if given:
            return [(given[0], "fork@v1: stop: true takes no rx, tx or target")]
        return []
    problems: list[tuple[str, str]] = []
    present: dict[str, str] = {}  # each destination given, as a valid stand-in once checked
    for name in given:
        value = params[name]
        text = value.constant if isinstance(value, Template) else str(value)
        if text == "":
            continue  # an empty destination is not given (as in fork_targets)
        if text is not None:
            try:
                parse_address(name, text)
            except ForkError as exc:
                problems.append((name, f"fork@v1: {exc}"))
        # An interpolated one is checked when it runs; here only its presence counts.
        present[name] = "udp:127.0.0.1:1"
    if problems:
        return problems
    try:
        fork_targets(**present, stream_type=params["stream_type"])
    except ForkError as exc:
        return [(exc.field, f"fork@v1: {exc}")]  # marked where the field is, else the item
    return []


def _destination(name: str, doc: str) -> Param:
    return Param(name, ParamType.STRING, doc, interpolated=True)


FORK = ActionDefinition(
    name="fork",
    version=1,
    summary="Copy the call's RTP to UDP receivers (rx, tx or target) until stopped.",
    params=(
        _destination("rx", "udp:IP:PORT that gets every RTP packet the caller sends"),
        _destination("tx", "udp:IP:PORT that gets every RTP packet the caller receives"),
        _destination("target", "udp:IP:PORT that gets both, behind a 24-byte STREP header"),
        Param(
            "stream_type",
            ParamType.STRING,
            "raw or decrypted (the same here: media is not encrypted); decrypted needs rx and tx",
            default="raw",
            choices=STREAM_TYPES,
        ),
        Param("stop", ParamType.BOOLEAN, "stop the running fork instead", default=False),
    ),
    run=fork,
    check=_check,
)

ACTIONS = (FORK,)

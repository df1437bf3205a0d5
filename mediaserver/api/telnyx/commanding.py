"""A command on a controlled call (the call, conference and queue routes).

As for the call commands: a repeated ``command_id`` is a no-op; the
command's ``client_state`` is in force while it applies (its events carry
it); a refused command leaves the call as it was and its ``command_id``
unused, so the application may send it again once fixed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import Request

from mediaserver.callcontrol.controlled import ControlledCall
from mediaserver.callcontrol.service import CallControl

OK: dict[str, Any] = {"data": {"result": "ok"}}
"""The answer to an applied (or started) command, as the seed gives it."""


def control_of(request: Request) -> CallControl:
    """The server's Call Control service."""
    control: CallControl = request.app.state.call_control
    return control


@contextmanager
def commanding(
    cc: ControlledCall, command_id: str | None, client_state: str | None
) -> Iterator[bool]:
    """True: apply the command; False: ``command_id`` repeats one (a no-op)."""
    cc.commanded.set()  # a command came, applied or not (the first-command timeout)
    if cc.seen(command_id):
        yield False
        return
    before = cc.client_state
    if client_state is not None:
        cc.client_state = client_state
    try:
        yield True
    except BaseException:
        cc.client_state = before
        cc.forget(command_id)
        raise

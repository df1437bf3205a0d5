"""``stop@v1``: stop the audio playing in the background.

Actions run one after the other, and ``say@v1``, ``play@v1`` and
``gather@v1`` prompts have ended (or been interrupted by a key) before the
next action starts. What can still be playing is background audio: a
``play@v1`` with ``background: true`` (music while a ``fetch@v1`` or other
actions run). ``stop@v1`` stops it at once; with nothing playing it does
nothing. A prompt of a later action also replaces it.

With ``dial: true`` it stops a ``dial@v1`` started with ``wait: false``
instead: the call it placed is hung up (cancelled if still ringing) and the
caller's bridge ends.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mediaserver.actions.definition import ActionContext, ActionDefinition
from mediaserver.actions.params import Param, ParamType


async def stop(context: ActionContext, params: Mapping[str, Any]) -> None:
    if params["dial"]:
        stopped = await context.call.stop_dial()
        context.log.info("dial stopped" if stopped else "no dial to stop")
        return
    stopped = context.call.stop_audio()
    context.log.debug("stop", stopped=stopped)


STOP = ActionDefinition(
    name="stop",
    version=1,
    summary="Stop the audio playing in the background (play@v1 with background: true), "
    "or a dial@v1 with wait: false.",
    params=(
        Param(
            "dial",
            ParamType.BOOLEAN,
            "true: hang up the call of a dial@v1 with wait: false (ringing or bridged) "
            "instead of stopping audio",
            default=False,
        ),
    ),
    run=stop,
)

ACTIONS = (STOP,)

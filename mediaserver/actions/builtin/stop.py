"""``stop@v1``: stop the audio playing in the background.

Actions run one after the other, and ``say@v1``, ``play@v1`` and
``gather@v1`` prompts have ended (or been interrupted by a key) before the
next action starts. What can still be playing is background audio: a
``play@v1`` with ``background: true`` (music while a ``fetch@v1`` or other
actions run). ``stop@v1`` stops it at once; with nothing playing it does
nothing. A prompt of a later action also replaces it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mediaserver.actions.definition import ActionContext, ActionDefinition


async def stop(context: ActionContext, params: Mapping[str, Any]) -> None:
    stopped = context.call.stop_audio()
    context.log.debug("stop", stopped=stopped)


STOP = ActionDefinition(
    name="stop",
    version=1,
    summary="Stop the audio playing in the background (play@v1 with background: true).",
    params=(),
    run=stop,
)

ACTIONS = (STOP,)

"""``play@v1``: play a sound file or a named tone.

Exactly one of ``url`` (a file path, interpolated) or ``tone`` (``beep``,
``ringback``, ``busy``, ``dial``). ``stop_on_key`` works as in ``say@v1``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mediaserver.actions.definition import ActionContext, ActionDefinition
from mediaserver.actions.params import REPEAT, STOP_ON_KEY
from mediaserver.actions.prompt import TONE, URL, sound


async def play(context: ActionContext, params: Mapping[str, Any]) -> None:
    audio = await sound(context, url=params["url"], tone=params["tone"])
    for _ in range(params["repeat"]):
        if await context.call.play(audio, stop_keys=params["stop_on_key"]) is not None:
            return


def _one_source(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    if (params["url"] is None) == (params["tone"] is None):
        return [("", "play@v1: give exactly one of url or tone")]
    return []


PLAY = ActionDefinition(
    name="play",
    version=1,
    summary="Play a sound file or a named tone.",
    params=(URL, TONE, REPEAT, STOP_ON_KEY),
    run=play,
    check=_one_source,
)

ACTIONS = (PLAY,)

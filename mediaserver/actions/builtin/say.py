"""``say@v1``: speak a text to the caller.

The text is a ``${...}`` template; language, voice and rate default to the
scenario's ``defaults``. With ``stop_on_key`` a key press stops the speech
(and the remaining repeats); the key stays buffered for the next gather.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mediaserver.actions.definition import ActionContext, ActionDefinition
from mediaserver.actions.params import LANGUAGE, RATE, REPEAT, STOP_ON_KEY, VOICE
from mediaserver.actions.prompt import TEXT, speech


async def say(context: ActionContext, params: Mapping[str, Any]) -> None:
    audio = await speech(
        context,
        params["text"],
        language=params["language"],
        voice=params["voice"],
        rate=params["rate"],
    )
    for _ in range(params["repeat"]):
        if await context.call.play(audio, stop_keys=params["stop_on_key"]) is not None:
            return


SAY = ActionDefinition(
    name="say",
    version=1,
    summary="Speak a text (text-to-speech).",
    params=(TEXT, LANGUAGE, VOICE, RATE, REPEAT, STOP_ON_KEY),
    run=say,
)

ACTIONS = (SAY,)

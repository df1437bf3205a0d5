"""``detect@v1``: answering-machine detection, and optionally the end of a machine's greeting.

Who answered an outbound call can be told, most of the time, by how the
first seconds sound: a person says a short "Hello?" and waits for an answer;
a machine plays a greeting of several seconds ("Hi, you have reached..."),
then a beep.

The action runs the detector that Call Control's ``answering_machine_detection``
uses (:mod:`mediaserver.media.amd`, through :class:`MachineDetection`), with the
thresholds :data:`DETECT_CONFIG` sets: those ``detect@v1`` has always had (a machine
after 2.4 s of speech, a person after 1.2 s of silence that follows speech, from
Twilio's AMD defaults) and the seed's for the rest. Two differences from Call
Control's defaults keep the action's results what they were: a line that stays
silent is ``unknown`` rather than a machine, and the analysis lasts ``timeout``.

With ``greeting_end: true``, after a ``machine`` verdict the action goes on
listening until the greeting ends (a beep, or silence) or ``greeting_timeout``
passes, so that what the scenario plays next lands on the message. The result is
the verdict (``human``, ``machine`` or ``unknown``) either way; ``$detection``
holds the details: ``result``, ``reason``, ``greeting`` (``beep_detected``,
``ended``, ``not_sure``, or null) and ``beep_hz``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from mediaserver.actions.amd import DETECT_CONFIG, detect_machine
from mediaserver.actions.definition import ActionContext, ActionDefinition
from mediaserver.actions.params import Param, ParamType

_VERDICTS = {"human": "human", "machine": "machine", "not_sure": "unknown"}


async def detect(context: ActionContext, params: Mapping[str, Any]) -> str:
    config = dataclasses.replace(
        DETECT_CONFIG,
        total_analysis_time_millis=round(params["timeout"] * 1000),
        greeting_total_analysis_time_millis=round(params["greeting_timeout"] * 1000),
    )
    detection, greeting = await detect_machine(
        context.call, config, follow_greeting=params["greeting_end"]
    )
    verdict = _VERDICTS[detection.result]
    context.log.info(
        "answering machine detection",
        result=verdict,
        reason=detection.reason,
        words=detection.words,
        speech=detection.greeting_seconds,
        listened=detection.at,
    )
    if greeting is not None:
        context.log.info(
            "answering machine greeting ended",
            result=greeting.result,
            beep_hz=greeting.beep_hz,
            listened=greeting.at,
        )
    context.set_builtin(
        "$detection",
        {
            "result": verdict,
            "reason": detection.reason,
            "greeting": None if greeting is None else greeting.result,
            "beep_hz": None if greeting is None else greeting.beep_hz,
        },
    )
    return verdict


DETECT = ActionDefinition(
    name="detect",
    version=1,
    summary="Tell a person from an answering machine by the speech/silence pattern of the "
    "first seconds, and optionally wait for the end of a machine's greeting (its beep).",
    params=(
        Param(
            "timeout",
            ParamType.SECONDS,
            "seconds to listen at most before answering unknown",
            default=4.0,
            minimum=1,
            maximum=30,
        ),
        Param(
            "greeting_end",
            ParamType.BOOLEAN,
            "after a machine verdict, listen on until its greeting ends: a beep, or silence",
            default=False,
        ),
        Param(
            "greeting_timeout",
            ParamType.SECONDS,
            "greeting_end: seconds after the verdict to wait at most for the greeting's end",
            default=20.0,
            minimum=1,
            maximum=120,
        ),
    ),
    run=detect,
    result="human, machine or unknown (details in $detection)",
)

ACTIONS = (DETECT,)

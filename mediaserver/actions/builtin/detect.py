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

``method: DTMF`` or ``method: SILENCE`` runs Callr's voicemail detection instead
(:mod:`mediaserver.actions.vms_detect`, the seed's ``App.Param.VmsDetect``
parameters): the result is ``human`` or ``machine`` (the seed's voicemail), and
``$detection`` adds ``method``, ``attempts`` and ``key`` (the key pressed).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from mediaserver.actions.amd import DETECT_CONFIG, detect_machine
from mediaserver.actions.definition import ActionContext, ActionDefinition
from mediaserver.actions.params import Param, ParamType
from mediaserver.actions.prompt import tone_or_sound
from mediaserver.actions.vms_detect import VmsDetect, detect_voicemail

_VERDICTS = {"human": "human", "machine": "machine", "not_sure": "unknown"}


async def detect(context: ActionContext, params: Mapping[str, Any]) -> str:
    if params["method"] != "AMD":
        return await _detect_voicemail(context, params)
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


async def _detect_voicemail(context: ActionContext, params: Mapping[str, Any]) -> str:
    if not context.call.answered:
        await context.call.answer()
    given = {name: params[name] for name in _VMS_NUMBERS if params[name] is not None}
    settings = VmsDetect(method=params["method"], **given)
    media = await tone_or_sound(context, params[f"{settings.method.lower()}_media"])
    verdict = await detect_voicemail(context.call, settings, media)
    result = "human" if verdict.result == "human" else "machine"
    context.log.info("voicemail detection", **verdict.as_variable())
    detection = verdict.as_variable()
    detection.update(result=result, greeting=None, beep_hz=None)
    context.set_builtin("$detection", detection)
    return result


_VMS_NUMBERS = (
    "dtmf_iterations",
    "dtmf_timeout",
    "silence_iterations",
    "silence_ms",
    "silence_timeout",
)


def _method_params(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Each method's parameters only with that method."""
    problems = []
    for name, value in params.items():
        prefix = name.partition("_")[0]
        wrong = prefix in ("dtmf", "silence") and params["method"] != prefix.upper()
        if wrong and value is not None:
            problems.append((name, f"detect@v1: {name} needs method: {prefix.upper()}"))
    if params["method"] != "AMD" and params["greeting_end"]:
        problems.append(("greeting_end", "detect@v1: greeting_end needs method: AMD"))
    return problems


def _vms_param(name: str, doc: str, low: int, high: int) -> Param:
    return Param(name, ParamType.INTEGER, doc, minimum=low, maximum=high)


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
        Param(
            "method",
            ParamType.STRING,
            "AMD (speech pattern), or Callr's DTMF (the callee must press a key) or SILENCE "
            "(a person falls silent after hello, a greeting does not)",
            default="AMD",
            choices=("AMD", "DTMF", "SILENCE"),
        ),
        _vms_param("dtmf_iterations", "DTMF: tries (media, then the wait); default 2", 1, 10),
        _vms_param("dtmf_timeout", "DTMF: seconds to wait for a key each try; default 2", 1, 60),
        Param(
            "dtmf_media",
            ParamType.STRING,
            "DTMF: played before each wait: a tone name, sound file or URL",
            interpolated=True,
        ),
        _vms_param("silence_iterations", "SILENCE: tries; default 1", 1, 30),
        _vms_param("silence_ms", "SILENCE: ms of silence that mean a person; 1800", 50, 10000),
        _vms_param("silence_timeout", "SILENCE: seconds to start the silence; default 3", 0, 120),
        Param(
            "silence_media",
            ParamType.STRING,
            "SILENCE: played before each listening: a tone name, sound file or URL",
            interpolated=True,
        ),
    ),
    check=_method_params,
    run=detect,
    result="human, machine or unknown (details in $detection)",
)

ACTIONS = (DETECT,)

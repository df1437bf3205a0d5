"""``audio-file@v1``: an audio file recorded over the phone (Callr v2 "Update audio file on
the phone").

``POST /api/audio-files/{sid}/phone`` gives a code; the recording line (the
``audio-recorder`` route target, :mod:`mediaserver.audio_recorder`) runs a
scenario that asks for it and records the caller. This action is its two
steps that touch audio files:

- ``check-code``: the result is the sid of the audio file ``code`` was given
  for, or ``""`` when the code is wrong, used, replaced or expired (the
  scenario says so and asks again). A code entered in time is good for
  another 10 minutes, the time the call needs.
- ``save``: uses the code up and makes the last recording of the run
  (``$recording``: ``voicemail@v1`` or ``record@v1``) the audio file's new
  content, source ``phone-record``; it is converted as an upload is
  (``pending-conversion``, ``processing``, ``ready``, each announced by
  ``v2.audio-file.updated``). It fails, naming why, when there is no
  recording, the code is no longer live, or the audio file is gone or busy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mediaserver.actions.definition import ActionContext, ActionDefinition, ActionFailed
from mediaserver.actions.params import Param, ParamType

COMMANDS = ("check-code", "save")


async def audio_file(context: ActionContext, params: Mapping[str, Any]) -> str:
    code = context.sandbox.interpolate(params["code"]).strip()
    server = context.server
    if params["command"] == "check-code":
        sid = server.audio_file_for_code(code)
        context.log.info("recording code entered", valid=sid is not None, audio_file=sid)
        return sid or ""
    recording = context.sandbox.get("$recording")
    path = recording.get("path") if isinstance(recording, Mapping) else None
    if not isinstance(path, str) or not path:
        raise ActionFailed("save: no recording yet in this run (record with voicemail@v1 first)")
    try:
        sid = await server.record_audio_file(code, path)
    except ValueError as exc:
        raise ActionFailed(f"save: {exc}") from None
    context.log.info("audio file recorded over the phone", audio_file=sid, recording=path)
    return sid


AUDIO_FILE = ActionDefinition(
    name="audio-file",
    version=1,
    summary="Check a recording code, or save the run's last recording as its audio file.",
    params=(
        Param(
            "command",
            ParamType.STRING,
            "check-code: which audio file the code is for; save: the last recording "
            "becomes its content",
            required=True,
            choices=COMMANDS,
        ),
        Param(
            "code",
            ParamType.STRING,
            "the code POST /api/audio-files/{sid}/phone gave, as the caller entered it",
            required=True,
            interpolated=True,
        ),
    ),
    run=audio_file,
    result='check-code: the audio file\'s sid, "" for a code that is not live; '
    "save: the audio file's sid",
    needs_call=False,
)

ACTIONS = (AUDIO_FILE,)

"""``/conferences``: rooms made from controlled calls, and the commands on them (seed 002).

A conference is known by its id (a uuid) or, while it is live, by its name
(the seed: "by id or name"). Commands answer ``{"data": {"result": "ok"}}``
once applied; audio, speech and recordings then run in the background and
their events follow. An unknown conference is 404; a command on a conference
that has ended, or naming a call that is not in it, is 422.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request

from mediaserver.api.telnyx.commanding import OK, commanding, control_of
from mediaserver.api.telnyx.errors import call_ended, invalid, not_found, wrong_state
from mediaserver.api.telnyx.models_conferences import (
    ConferencePlayIn,
    ConferenceRecordIn,
    ConferenceSpeakIn,
    CreateConferenceIn,
    DialParticipantIn,
    HoldIn,
    JoinConferenceIn,
    LeaveConferenceIn,
    ParticipantsIn,
    UpdateConferenceIn,
)
from mediaserver.api.telnyx.paging import PageNumber, PageRequest, PageSize, page_of
from mediaserver.callcontrol.commands import INFINITE_LOOP
from mediaserver.callcontrol.conference_model import (
    BEEPS,
    ConferenceRefused,
    ControlledConference,
    JoinOptions,
    Participant,
)
from mediaserver.callcontrol.conferences import ConferenceService
from mediaserver.callcontrol.controlled import ControlledCall
from mediaserver.callcontrol.service import DialRequest, dial
from mediaserver.media.pcm import Pcm
from mediaserver.sip.uac import TargetError
from mediaserver.webhooks.envelope import format_occurred_at

router = APIRouter(tags=["Conference Commands"])

ConferenceId = Annotated[str, Path(min_length=1, max_length=256)]
DIAL_ANSWER_POLL = 0.05
"""Seconds between looks at a dialled participant's call while it rings."""


def _service(request: Request) -> ConferenceService:
    service: ConferenceService = request.app.state.server.call_control_conferences
    return service


def _conference(request: Request, ident: str) -> ControlledConference:
    conf = _service(request).find(ident)
    if conf is None:
        raise not_found("conference", ident)
    return conf


def _call(request: Request, call_control_id: str, field: str = "call_control_id") -> ControlledCall:
    """The live controlled call a body names (422 on ``field`` when there is none)."""
    cc = control_of(request).find(call_control_id)
    if cc is None:
        raise invalid(field, f"No call {call_control_id!r} under Call Control.")
    if not cc.alive:
        raise call_ended(call_control_id)
    return cc


def _conference_record(conf: ControlledConference) -> dict[str, Any]:
    record: dict[str, Any] = {
        "record_type": "conference",
        "id": conf.id,
        "name": conf.name,
        "connection_id": conf.connection_id,
        "status": conf.status,
        "created_at": format_occurred_at(conf.created_at),
        "updated_at": format_occurred_at(conf.updated_at),
        "expires_at": format_occurred_at(conf.expires_at),
    }
    if conf.end_reason is not None:
        record["end_reason"] = conf.end_reason
    if conf.ended_by is not None:
        record["ended_by"] = {
            "call_control_id": conf.ended_by.call_control_id,
            "call_session_id": conf.ended_by.call_session_id,
        }
    return record


def _participant_record(conf: ControlledConference, p: Participant) -> dict[str, Any]:
    return {
        "record_type": "participant",
        "id": p.id,
        "call_control_id": p.cc.call_control_id,
        "call_leg_id": p.cc.call_leg_id,
        "conference": {"id": conf.id, "name": conf.name},
        "whisper_call_control_ids": [],
        "created_at": format_occurred_at(p.created_at),
        "updated_at": format_occurred_at(p.updated_at),
        "end_conference_on_exit": p.end_conference_on_exit,
        "soft_end_conference_on_exit": p.soft_end_conference_on_exit,
        "status": p.status,
        "muted": p.member.muted,
        "on_hold": p.on_hold,
    }


def _no_whisper(role: str, field: str = "supervisor_role") -> None:
    if role == "whisper":
        raise invalid(
            field, "The whisper role is not available here: use monitor (muted) or barge."
        )


def _http_url(value: str | None, field: str) -> None:
    """Audio is fetched from http(s) URLs only: a body never names a file of the server."""
    if value is not None and not value.lower().startswith(("http://", "https://")):
        raise invalid(field, f"{field} must be an http:// or https:// URL.")


def _media_name(value: str | None, field: str) -> None:
    if value is not None:
        raise invalid(
            field, f"{field} needs a media storage, which this server has not: use a URL."
        )


# -- the conferences ------------------------------------------------------------------------------


@router.get("/conferences", summary="List conferences")
async def list_conferences(
    request: Request,
    number: PageNumber = 1,
    size: PageSize = 20,
    name: Annotated[str | None, Query(alias="filter[name]", max_length=256)] = None,
) -> dict[str, Any]:
    conferences = _service(request).all()
    if name is not None:
        conferences = [c for c in conferences if c.name == name]
    return page_of([_conference_record(c) for c in conferences], PageRequest(number, size))


@router.post("/conferences", summary="Create conference")
async def create_conference(request: Request, body: CreateConferenceIn) -> dict[str, Any]:
    _http_url(body.hold_audio_url, "hold_audio_url")
    _media_name(body.hold_media_name, "hold_media_name")
    service = _service(request)
    cc = _call(request, body.call_control_id)
    with commanding(cc, body.command_id, body.client_state) as fresh:
        existing = next((c for c in service.all() if c.creator is cc), None)
        if not fresh and existing is not None:
            return {"data": _conference_record(existing)}
        options = JoinOptions(hold_audio_url=body.hold_audio_url)
        conf = service.create(
            cc,
            body.name,
            beep=BEEPS[body.beep_enabled],
            start=body.start_conference_on_create,
            duration_minutes=body.duration_minutes,
            max_participants=body.max_participants,
            options=options,
        )
    return {"data": _conference_record(conf)}


@router.get("/conferences/{id}", summary="Retrieve a conference")
async def retrieve_conference(request: Request, id: ConferenceId) -> dict[str, Any]:
    return {"data": _conference_record(_conference(request, id))}


@router.get("/conferences/{conference_id}/participants", summary="List conference participants")
async def list_participants(
    request: Request,
    conference_id: ConferenceId,
    number: PageNumber = 1,
    size: PageSize = 20,
    muted: Annotated[bool | None, Query(alias="filter[muted]")] = None,
    on_hold: Annotated[bool | None, Query(alias="filter[on_hold]")] = None,
    whispering: Annotated[bool | None, Query(alias="filter[whispering]")] = None,
) -> dict[str, Any]:
    conf = _conference(request, conference_id)
    found = list(conf.participants.values())
    if muted is not None:
        found = [p for p in found if p.member.muted == muted]
    if on_hold is not None:
        found = [p for p in found if p.on_hold == on_hold]
    if whispering:
        found = []  # nobody whispers here (the role is refused)
    records = [_participant_record(conf, p) for p in found]
    return page_of(records, PageRequest(number, size))


# -- joining and leaving ----------------------------------------------------------------------


@router.post("/conferences/{id}/actions/join", summary="Join a conference")
async def join(request: Request, id: ConferenceId, body: JoinConferenceIn) -> Any:
    _no_whisper(body.supervisor_role)
    _http_url(body.hold_audio_url, "hold_audio_url")
    _media_name(body.hold_media_name, "hold_media_name")
    conf = _conference(request, id)
    cc = _call(request, body.call_control_id)
    options = JoinOptions(
        mute=body.mute,
        hold=body.hold,
        beep=None if body.beep_enabled is None else BEEPS[body.beep_enabled],
        start_conference_on_enter=body.start_conference_on_enter,
        end_conference_on_exit=body.end_conference_on_exit,
        soft_end_conference_on_exit=body.soft_end_conference_on_exit,
        supervisor_role=body.supervisor_role,
        hold_audio_url=body.hold_audio_url,
    )
    with commanding(cc, body.command_id, body.client_state) as fresh:
        if fresh:
            _service(request).join(conf, cc, options)
    return OK


@router.post("/conferences/{id}/actions/leave", summary="Leave a conference")
async def leave(request: Request, id: ConferenceId, body: LeaveConferenceIn) -> Any:
    conf = _conference(request, id)
    cc = _call(request, body.call_control_id)
    beep = None if body.beep_enabled is None else BEEPS[body.beep_enabled]
    with commanding(cc, body.command_id, None) as fresh:
        if fresh:
            _service(request).leave(conf, cc, beep)
    return OK


@router.post("/conferences/{id}/actions/dial_participant", summary="Dial a new participant")
async def dial_participant(request: Request, id: ConferenceId, body: DialParticipantIn) -> Any:
    _no_whisper(body.supervisor_role)
    _http_url(body.hold_audio_url, "hold_audio_url")
    conf = _conference(request, id)
    if conf.ended:
        raise wrong_state(f"Conference {conf.id!r} has ended.")
    control = control_of(request)
    creator = conf.creator
    dial_request = DialRequest(
        to=body.to,
        from_=body.from_,
        connection_id=creator.connection_id,
        webhook=creator.webhook,
        timeout=30.0,
        time_limit=14400.0,
        headers={},
        client_state=body.client_state,
    )
    try:
        cc = await dial(control, control.dialer, dial_request)
    except TargetError as exc:
        raise invalid("to", str(exc)) from None
    options = JoinOptions(
        mute=body.mute,
        hold=body.hold,
        start_conference_on_enter=body.start_conference_on_enter,
        supervisor_role=body.supervisor_role,
        hold_audio_url=body.hold_audio_url,
    )
    service = _service(request)

    async def join_when_answered() -> None:
        # Bounded by the dial's own timeout: the call is answered or ends by then.
        for _ in range(int((dial_request.timeout + 5.0) / DIAL_ANSWER_POLL)):
            if cc.call.answered or cc.call.ended:
                break
            await asyncio.sleep(DIAL_ANSWER_POLL)
        if cc.call.answered and not cc.call.ended and not conf.ended:
            try:
                service.join(conf, cc, options)
            except ConferenceRefused as exc:
                with contextlib.suppress(Exception):
                    await cc.call.hangup("normal_clearing")
                raise RuntimeError(f"dialled participant could not join: {exc}") from None

    control.keep(asyncio.get_running_loop().create_task(join_when_answered()))
    return {"data": {"result": "ok", "call_control_id": cc.call_control_id}}


@router.post("/conferences/{id}/actions/update", summary="Update conference participant")
async def update(request: Request, id: ConferenceId, body: UpdateConferenceIn) -> Any:
    _no_whisper(body.supervisor_role)
    conf = _conference(request, id)
    cc = _call(request, body.call_control_id)
    with commanding(cc, body.command_id, None) as fresh:
        if fresh:
            _service(request).update(conf, cc, body.supervisor_role)
    return OK


# -- muting and holding ------------------------------------------------------------------------


def _mute(request: Request, ident: str, body: ParticipantsIn, muted: bool) -> Any:
    conf = _conference(request, ident)
    _service(request).mute(conf, body.call_control_ids, muted)
    return OK


@router.post("/conferences/{id}/actions/mute", summary="Mute conference participants")
async def mute(request: Request, id: ConferenceId, body: ParticipantsIn) -> Any:
    return _mute(request, id, body, True)


@router.post("/conferences/{id}/actions/unmute", summary="Unmute conference participants")
async def unmute(request: Request, id: ConferenceId, body: ParticipantsIn) -> Any:
    return _mute(request, id, body, False)


@router.post("/conferences/{id}/actions/hold", summary="Hold conference participants")
async def hold(request: Request, id: ConferenceId, body: HoldIn) -> Any:
    _http_url(body.audio_url, "audio_url")
    _media_name(body.media_name, "media_name")
    conf = _conference(request, id)
    _service(request).hold(conf, body.call_control_ids, True, body.audio_url)
    return OK


@router.post("/conferences/{id}/actions/unhold", summary="Unhold conference participants")
async def unhold(request: Request, id: ConferenceId, body: ParticipantsIn) -> Any:
    conf = _conference(request, id)
    if not body.call_control_ids:
        raise invalid("call_control_ids", "call_control_ids is required: the calls to unhold.")
    _service(request).hold(conf, body.call_control_ids, False, None)
    return OK


# -- audio --------------------------------------------------------------------------------------


@router.post("/conferences/{id}/actions/play", summary="Play audio to conference participants")
async def play(request: Request, id: ConferenceId, body: ConferencePlayIn) -> Any:
    _media_name(body.media_name, "media_name")
    if body.audio_url is None:
        raise invalid("audio_url", "audio_url is required (media_name needs a media storage).")
    _http_url(body.audio_url, "audio_url")
    conf = _conference(request, id)
    service = _service(request)
    url = body.audio_url
    loop = INFINITE_LOOP if body.loop == "infinity" else body.loop

    async def audio() -> Pcm:
        return await service.prompts.file(url)

    service.play(conf, audio, body.call_control_ids, loop, "playback", {"media_url": url})
    return OK


@router.post("/conferences/{id}/actions/speak", summary="Speak text to conference participants")
async def speak(request: Request, id: ConferenceId, body: ConferenceSpeakIn) -> Any:
    conf = _conference(request, id)
    service = _service(request)
    voice = body.voice.lower() if body.voice.lower() in ("male", "female") else "female"
    language = body.language or "en-US"
    text = body.payload

    async def audio() -> Pcm:
        return await service.prompts.speech(text, language=language, voice=voice)

    service.play(conf, audio, body.call_control_ids, 1, "speak", {})
    return OK


@router.post("/conferences/{id}/actions/stop", summary="Stop audio being played on the conference")
async def stop(request: Request, id: ConferenceId, body: ParticipantsIn) -> Any:
    conf = _conference(request, id)
    _service(request).stop(conf, body.call_control_ids)
    return OK


# -- recording -----------------------------------------------------------------------------------


@router.post("/conferences/{id}/actions/record_start", summary="Conference recording start")
async def record_start(request: Request, id: ConferenceId, body: ConferenceRecordIn) -> Any:
    if body.format == "mp3":
        raise invalid("format", "mp3 recordings are not available here: use wav.")
    conf = _conference(request, id)
    _service(request).recordings.start(
        conf,
        base_url=str(request.base_url),
        fmt=body.format,
        channels=body.channels,
        max_length=body.max_length,
        play_beep=body.play_beep,
    )
    return OK


@router.post("/conferences/{id}/actions/record_stop", summary="Conference recording stop")
async def record_stop(request: Request, id: ConferenceId, body: ParticipantsIn) -> Any:
    conf = _conference(request, id)
    await _service(request).recordings.stop(conf)
    return OK

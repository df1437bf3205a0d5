"""Conferences under Call Control (seed 002 ``/conferences``): rooms commanded over REST.

Theory of operation. A :class:`ControlledConference` is a room of the native
conference layer (:class:`~mediaserver.calls.conferences.Conferences`, the
same rooms ``conference@v1`` joins by name, mixed N-1 by
:class:`~mediaserver.media.mixer.Mixer`) plus what Call Control adds: a
uuid ``id``, the creating call (whose application gets the
conference-level events), its participants by ``call_control_id``, and the
audio, recording and timer under way.

Joining is bookkeeping on the room (no I/O), so ``create`` and ``join``
apply at once; each participant then has a *stay* task that waits until
its member leaves the room (``leave``, the conference ending) or its call
ends, and posts ``conference.participant.left``. While in the room the call
keeps taking commands (hang-up, leave, mute...).

Mapping to the native member roles:

* ``mute``: :meth:`Conference.set_muted` (heard by nobody, still hears);
* ``hold``: :meth:`Conference.set_held` (hears the room's hold audio or
  nothing, is not heard);
* ``start_conference_on_create: false``: every participant joins waiting
  (the native ``wait_for_moderator``: held) until one joins with
  ``start_conference_on_enter`` (a native moderator);
* ``end_conference_on_exit`` / ``soft_end_conference_on_exit``: the room
  ends when that participant leaves; the others are hung up for the
  former, left parked for the latter;
* ``supervisor_role: monitor``: muted; ``barge``/``none``: a plain member.

The conference ends when its last Call Control participant leaves (reason
``all_left``), when a participant ending it leaves (``host_left``), or at
``duration_minutes`` (``time_exceeded``); ``conference.ended`` is then
posted once and the recording under way is saved. The room tells who takes
the floor (the loudest participant, :mod:`~mediaserver.media.floor`):
``conference.floor.changed``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

from mediaserver.callcontrol.conference_model import (
    DEFAULT_LIFETIME,
    KEEP_ENDED,
    Announcement,
    ConferenceRefused,
    ControlledConference,
    EndReason,
    JoinOptions,
    Participant,
    now,
)
from mediaserver.callcontrol.conference_recording import ConferenceRecordings
from mediaserver.callcontrol.controlled import ControlledCall
from mediaserver.log import get_logger
from mediaserver.media.conference import ConferenceFull, Member
from mediaserver.media.pcm import SAMPLE_RATE, AudioError, Pcm
from mediaserver.webhooks.envelope import format_occurred_at

if TYPE_CHECKING:
    from mediaserver.callcontrol.service import CallControl
    from mediaserver.calls.conferences import Conferences
    from mediaserver.media.prompts import Prompts

log = get_logger("callcontrol")


class ConferenceService:
    """The controlled conferences of the server, by id and by name."""

    def __init__(
        self,
        control: CallControl,
        rooms: Conferences,
        prompts: Prompts,
        *,
        queued: Callable[[ControlledCall], bool] = lambda _: False,
    ) -> None:
        self.control = control
        self.queued = queued
        """Whether a call waits in a queue (then it cannot join)."""
        self.rooms = rooms
        self.prompts = prompts
        self._live: dict[str, ControlledConference] = {}
        self._ended: OrderedDict[str, ControlledConference] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()
        self.recordings = ConferenceRecordings(self)

    # -- finding ------------------------------------------------------------------------

    def find(self, id_or_name: str) -> ControlledConference | None:
        """A conference by id (live or ended) or by the name of a live one."""
        found = self._live.get(id_or_name) or self._ended.get(id_or_name)
        if found is not None:
            return found
        return next((c for c in self._live.values() if c.name == id_or_name), None)

    def all(self) -> list[ControlledConference]:
        """Live conferences, then the ended ones, newest first in each."""
        live = sorted(self._live.values(), key=lambda c: c.created_at, reverse=True)
        return live + list(reversed(self._ended.values()))

    def in_conference(self, cc: ControlledCall) -> ControlledConference | None:
        return next((c for c in self._live.values() if cc.call_control_id in c.participants), None)

    # -- creating and joining ------------------------------------------------------------------

    def create(
        self,
        cc: ControlledCall,
        name: str,
        *,
        beep: str,
        start: bool,
        duration_minutes: int | None,
        max_participants: int | None,
        options: JoinOptions,
    ) -> ControlledConference:
        """Make the conference ``name`` with ``cc`` in it; ``conference.created`` then
        ``conference.participant.joined`` follow."""
        if any(c.name == name for c in self._live.values()):
            raise ConferenceRefused("name", f"A conference named {name!r} is in progress already.")
        self._joinable(cc)
        room = self.rooms.room(name, cc.call.leg.clock)
        lifetime = (
            DEFAULT_LIFETIME if duration_minutes is None else timedelta(minutes=duration_minutes)
        )
        conf = ControlledConference(name, room, cc, beep, start, now() + lifetime)
        conf.max_participants = max_participants
        self._live[conf.id] = conf
        room.on_floor = lambda leg: self._floor_changed(conf, leg)
        self.post_call_event(conf, cc, "conference.created")
        try:
            self._join(conf, cc, options)
        except ConferenceRefused:
            self._finish(conf, "all_left")
            if not room.members:
                self.rooms.drop(room)
            raise
        if duration_minutes is not None:
            conf.timer = self.spawn(self._time_limit(conf, duration_minutes * 60.0))
        return conf

    def join(self, conf: ControlledConference, cc: ControlledCall, options: JoinOptions) -> None:
        self.usable(conf)
        self._joinable(cc)
        self._join(conf, cc, options)

    def _joinable(self, cc: ControlledCall) -> None:
        if not cc.call.answered:
            raise ConferenceRefused(None, "the call is not answered yet: answer it first")
        current = self.in_conference(cc)
        if current is not None:
            raise ConferenceRefused(
                "call_control_id",
                f"Call {cc.call_control_id!r} is already in conference {current.name!r}: "
                "leave it first.",
            )
        if self.queued(cc):
            raise ConferenceRefused(
                "call_control_id", f"Call {cc.call_control_id!r} waits in a queue: leave it first."
            )
        if cc.bridge is not None and not cc.bridge.done():
            raise ConferenceRefused(
                "call_control_id", f"Call {cc.call_control_id!r} is bridged: unbridge it first."
            )

    def usable(self, conf: ControlledConference) -> None:
        if conf.ended:
            raise ConferenceRefused(None, f"Conference {conf.id!r} has ended.")

    def _join(self, conf: ControlledConference, cc: ControlledCall, options: JoinOptions) -> None:
        beep = options.beep or conf.beep
        starts = options.start_conference_on_enter
        member = Member(
            cc.call.leg,
            cc.call_control_id,
            moderator=starts,
            wait_for_moderator=not conf.started and not starts,
            end_on_exit=options.end_conference_on_exit or options.soft_end_conference_on_exit,
            beep_on_enter=beep in ("enter", "both"),
            beep_on_exit=beep in ("exit", "both"),
            muted=options.mute or options.supervisor_role == "monitor",
        )
        # Speech or audio of the call's own stops: the room sends to it from now on.
        for slot in (cc.media, cc.gather):
            if slot is not None and not slot.done():
                slot.cancel()
        cc.call.stop_audio()
        try:
            conf.room.join(member, max_participants=conf.max_participants)
        except ConferenceFull as exc:
            raise ConferenceRefused(None, f"{exc}.") from None
        if options.hold:
            conf.room.set_held(cc.call.leg, True)
        if starts and not conf.started:
            conf.started = True
        participant = Participant(
            cc,
            member,
            end_conference_on_exit=options.end_conference_on_exit,
            soft_end_conference_on_exit=options.soft_end_conference_on_exit,
            supervisor_role=options.supervisor_role,
        )
        conf.participants[cc.call_control_id] = participant
        conf.updated_at = now()
        log.info(
            "call control conference joined",
            conference=conf.name,
            call_id=cc.call_control_id,
            participants=len(conf.room),
        )
        self.post_call_event(conf, cc, "conference.participant.joined")
        participant.stay = self.spawn(self._stay(conf, participant))
        if options.hold_audio_url is not None:
            self.spawn(self._hold_audio(conf, options.hold_audio_url, replace=False))

    async def _stay(self, conf: ControlledConference, participant: Participant) -> None:
        """Wait until the participant is out of the room (or its call over), then tidy up."""
        cc = participant.cc
        member = participant.member
        waiting: list[asyncio.Future[Any]] = [member.outcome, cc.call.ended_future]
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if not member.outcome.done():
            self._depart(conf, participant, "hangup")
        outcome = member.outcome.result()
        participant.status = "left"
        participant.updated_at = conf.updated_at = now()
        conf.participants.pop(cc.call_control_id, None)
        self._stop_audio_for(conf, [cc])
        log.info(
            "call control conference left",
            conference=conf.name,
            call_id=cc.call_control_id,
            outcome=outcome,
        )
        self.post_call_event(conf, cc, "conference.participant.left")
        if outcome == "ended" and conf.hang_up_on_end and not cc.call.ended:
            await cc.call.hangup("normal_clearing")
        if not conf.participants and not conf.ended:
            self._finish(conf, conf.end_reason_pending or "all_left")

    def _depart(self, conf: ControlledConference, participant: Participant, outcome: str) -> None:
        """Take the participant out of the room; one who ends the conference ends it."""
        if participant.end_conference_on_exit or participant.soft_end_conference_on_exit:
            conf.end_reason_pending = "host_left"
            conf.ended_by = participant.cc
            conf.hang_up_on_end = participant.end_conference_on_exit
        conf.room.leave(participant.cc.call.leg, outcome)

    def leave(self, conf: ControlledConference, cc: ControlledCall, beep: str | None) -> None:
        self.usable(conf)
        participant = conf.participants.get(cc.call_control_id)
        if participant is None:
            raise ConferenceRefused(
                "call_control_id",
                f"Call {cc.call_control_id!r} is not in conference {conf.name!r}.",
            )
        if beep is not None:
            participant.member.beep_on_exit = beep in ("exit", "both")
        self._depart(conf, participant, "left")

    # -- participants' roles ---------------------------------------------------------------------

    def targets(
        self, conf: ControlledConference, ids: list[str] | None, field_name: str
    ) -> list[Participant]:
        """The participants named by ``ids`` (all of them for None or empty)."""
        self.usable(conf)
        if not ids:
            return list(conf.participants.values())
        out = []
        for index, ident in enumerate(ids):
            participant = conf.participants.get(ident)
            if participant is None:
                raise ConferenceRefused(
                    f"{field_name}.{index}", f"Call {ident!r} is not in conference {conf.name!r}."
                )
            out.append(participant)
        return out

    def mute(self, conf: ControlledConference, ids: list[str] | None, muted: bool) -> None:
        for participant in self.targets(conf, ids, "call_control_ids"):
            conf.room.set_muted(participant.cc.call.leg, muted)
            participant.updated_at = now()

    def hold(
        self, conf: ControlledConference, ids: list[str] | None, held: bool, audio_url: str | None
    ) -> None:
        for participant in self.targets(conf, ids, "call_control_ids"):
            conf.room.set_held(participant.cc.call.leg, held)
            participant.updated_at = now()
        if audio_url is not None:
            self.spawn(self._hold_audio(conf, audio_url, replace=True))

    def update(self, conf: ControlledConference, cc: ControlledCall, role: str) -> None:
        (participant,) = self.targets(conf, [cc.call_control_id], "call_control_id")
        participant.supervisor_role = role
        conf.room.set_muted(cc.call.leg, role == "monitor")
        participant.updated_at = now()

    async def _hold_audio(self, conf: ControlledConference, url: str, *, replace: bool) -> None:
        try:
            audio = await self.prompts.file(url)
        except AudioError as exc:
            log.warning("conference hold audio unusable", conference=conf.name, reason=str(exc))
            return
        if replace or conf.room.mixer.hold_audio is None:
            conf.room.mixer.hold_audio = audio

    # -- audio into the room -----------------------------------------------------------------------

    def play(
        self,
        conf: ControlledConference,
        audio: Callable[[], Coroutine[Any, Any, Pcm]],
        ids: list[str] | None,
        loop: int,
        kind: Literal["playback", "speak"],
        fields: dict[str, Any],
    ) -> None:
        """Play ``audio`` (rendered in the background) to the participants ``ids``
        (everyone, and the recording, for None), ``loop`` times; the seed's
        ``conference[.participant].<kind>.started``/``ended`` events frame it."""
        self.usable(conf)
        targets = self.targets(conf, ids, "call_control_ids") if ids else None
        announcement = Announcement({})
        conf.announcements.append(announcement)

        async def run() -> None:
            started = False
            try:
                pcm = await audio()
                legs: list[ControlledCall | None] = (
                    [None]
                    if targets is None
                    else [p.cc for p in targets if p.cc.call_control_id in conf.participants]
                )
                for target in legs:
                    key = None if target is None else target.call.leg
                    if key is not None and key not in conf.room.mixer:
                        continue  # out of the room already (its stay is winding up)
                    ident = None if target is None else target.call_control_id
                    announcement.injections[ident] = conf.room.mixer.inject(key, pcm, loop=loop > 1)
                started = True
                self._post_audio(conf, targets, kind, "started", fields)
                await asyncio.sleep(len(pcm) * loop / SAMPLE_RATE)
            except AudioError as exc:
                log.warning("conference audio unusable", conference=conf.name, reason=str(exc))
            finally:
                for injection in announcement.injections.values():
                    injection.cancel()
                with contextlib.suppress(ValueError):
                    conf.announcements.remove(announcement)
                if started:
                    self._post_audio(conf, targets, kind, "ended", fields)

        announcement.task = self.spawn(run())

    def stop(self, conf: ControlledConference, ids: list[str] | None) -> None:
        """Stop the audio played into the room (to everyone for None, else to ``ids``)."""
        if not ids:
            self.usable(conf)
            for announcement in list(conf.announcements):
                if announcement.task is not None:
                    announcement.task.cancel()
            return
        self._stop_audio_for(conf, [p.cc for p in self.targets(conf, ids, "call_control_ids")])

    def _stop_audio_for(self, conf: ControlledConference, calls: Iterable[ControlledCall]) -> None:
        for announcement in list(conf.announcements):
            for cc in calls:
                injection = announcement.injections.pop(cc.call_control_id, None)
                if injection is not None:
                    injection.cancel()
                    if not announcement.injections and announcement.task is not None:
                        announcement.task.cancel()

    def _post_audio(
        self,
        conf: ControlledConference,
        targets: list[Participant] | None,
        kind: str,
        phase: str,
        fields: dict[str, Any],
    ) -> None:
        if targets is None:
            self.post_conference_event(
                conf,
                f"conference.{kind}.{phase}",
                creator_call_session_id=conf.creator.call_session_id,
                **fields,
            )
            return
        for participant in targets:
            self.post_call_event(
                conf,
                participant.cc,
                f"conference.participant.{kind}.{phase}",
                creator_call_session_id=conf.creator.call_session_id,
                **fields,
            )

    # -- ending ---------------------------------------------------------------------------------

    async def _time_limit(self, conf: ControlledConference, seconds: float) -> None:
        await asyncio.sleep(seconds)
        if not conf.ended:
            conf.end_reason_pending = "time_exceeded"
            conf.room.end("ended")

    def _finish(self, conf: ControlledConference, reason: EndReason) -> None:
        """The conference is over: stop what runs in it, save its recording, tell."""
        conf.end_reason = reason
        conf.updated_at = now()
        for announcement in list(conf.announcements):
            if announcement.task is not None:
                announcement.task.cancel()
        if conf.timer is not None and not conf.timer.done():
            conf.timer.cancel()
        if conf.room.on_floor is not None:
            conf.room.on_floor = None
        self._live.pop(conf.id, None)
        self._ended[conf.id] = conf
        while len(self._ended) > KEEP_ENDED:
            self._ended.popitem(last=False)
        log.info("call control conference ended", conference=conf.name, reason=reason)

        async def wrap_up() -> None:
            if conf.recording is not None:
                await self.recordings.stop(conf)
            self.post_call_event(conf, conf.creator, "conference.ended", reason=reason)

        self.spawn(wrap_up())

    def _floor_changed(self, conf: ControlledConference, leg: object) -> None:
        """The room says ``leg`` has the floor now: tell the conference's application."""
        holder = next((p.cc for p in conf.participants.values() if p.cc.call.leg is leg), None)
        if holder is not None and not conf.ended:
            self.post_call_event(conf, holder, "conference.floor.changed", to=conf.creator)

    # -- events ---------------------------------------------------------------------------------

    def post_call_event(
        self,
        conf: ControlledConference,
        cc: ControlledCall,
        event_type: str,
        *,
        to: ControlledCall | None = None,
        **fields: Any,
    ) -> None:
        """An event about one participant, to its call's webhook (or ``to``'s)."""
        payload: dict[str, Any] = {
            "call_control_id": cc.call_control_id,
            "call_leg_id": cc.call_leg_id,
            "call_session_id": cc.call_session_id,
            "client_state": cc.client_state,
            "conference_id": conf.id,
            "connection_id": cc.connection_id,
            "occurred_at": format_occurred_at(now()),
            **fields,
        }
        webhook = (to or cc).webhook
        self.control.post_payload(webhook, event_type, payload, cc.call_control_id)

    def post_conference_event(
        self, conf: ControlledConference, event_type: str, **fields: Any
    ) -> None:
        """An event about the whole conference, to the creating call's webhook."""
        payload: dict[str, Any] = {
            "conference_id": conf.id,
            "connection_id": conf.connection_id,
            "occurred_at": format_occurred_at(now()),
            **fields,
        }
        self.control.post_payload(conf.creator.webhook, event_type, payload, conf.id)

    def spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(self._guarded(work))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    @staticmethod
    async def _guarded(work: Coroutine[Any, Any, None]) -> None:
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("call control conference task failed")

"""Relay workers: pure bridges carried by other processes, so relaying uses every core.

Theory of operation
-------------------
The main process owns calls, signalling, the media clock and everything that
decodes. Most of a bridged call's packets need none of that: a plain G.711
packet from the latched peer goes out of the other leg with a new header
(RtpLeg's fast path). Those bridges are what this module hands to worker
processes (media/relay_worker.py), ``rtp.relay_workers`` of them, started on
the first hand-over and restarted when one dies.

* **Hand-over.** A leg that starts relaying on the fast path is *considered*
  (``RtpLeg.relay_pool``). Five times a second the candidates are swept: a group
  (the two legs of a bridge, or one leg echoing to itself) whose every leg
  :meth:`~mediaserver.media.leg.RtpLeg.relays_only` goes to the least loaded
  worker, a new bridge before its media starts (the worker latches the SDP's
  address on sight, as the main process would), one that came home once it
  has relayed quietly a couple of sweeps. Each leg gives
  its state (:class:`~mediaserver.media.relay_state.RelayEnd`) and a duplicate
  of its socket (``SCM_RIGHTS``); the main process closes its own transport but
  keeps another duplicate, unread, so the port stays the call's whatever
  happens to the worker.
* **Coming home.** Anything the worker does not do brings the group back: a
  packet off the fast path (telephone-event, RTCP or STUN on the RTP port, a
  new source) comes home with the group and is handled as if read here; and
  anything the main process does to a leg that is away (hang-up, unbridge,
  playback, recording or any decoding, DTMF to send, a re-INVITE) recalls it
  first (``RtpLeg._recall``). Either way the worker stops reading, then sends
  the final state; the leg takes it and reads its kept socket again, so no
  packet is lost (unread ones wait in the socket) and the sequence numbers,
  timestamps and statistics go on where the worker left them.
* **Figures.** Every two seconds the worker sends the counters and RFC 3550
  reception figures of what it carries, so RTCP reports, ``/metrics`` and the
  live calls API stay current.
* **A worker that dies** (its socket closes) loses no call: its groups come
  home with their last figures, the sequence numbers and timestamps moved past
  what it may have sent since (a receiver sees a short loss, a new talkspurt),
  the main process relays them until they settle again on a new worker, and
  the death is logged and counted (``mediaserver_relay_worker_restarts_total``).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import pickle
import socket
import sys
import time
import weakref
from dataclasses import replace
from typing import Any

from mediaserver.log import get_logger
from mediaserver.media.leg import RtpLeg
from mediaserver.media.relay_state import Bounced, RelayEnd

log = get_logger("media")

# Bridges go early: media that starts on many calls at once (a trunk's busy hour,
# a load test) would otherwise saturate the main loop, whose timers, this sweep
# among them, then run late.
SWEEP_INTERVAL = 0.2  # seconds between looks for bridges to hand over
SETTLE_PACKETS = 3  # packets a leg relays at home (a sweep apart) before it goes
MAX_PER_SWEEP = 2000  # groups handed over per sweep (a full worker queue stops it sooner)
MAX_MESSAGE = 1 << 20
SOCKET_BUFFER = 4 << 20
# After a worker died: what it may have sent since its last figures (RFC 3550 A.1's
# receivers take a forward jump under MAX_DROPOUT as loss, not as a new stream).
_LOST_SEQUENCE_MARGIN = 200
EARLY_DEATH = 5.0  # seconds: a worker dying sooner after its start counts towards giving up
GIVE_UP_AFTER = 3  # early deaths in a row


class _Worker:
    """One worker process and its end of the control socket."""

    def __init__(self, pool: RelayWorkers, slot: int) -> None:
        self.pool = pool
        self.slot = slot
        self.process: asyncio.subprocess.Process | None = None
        self.control: socket.socket | None = None
        self.groups: dict[int, _Carried] = {}
        self.started_at = 0.0

    async def start(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        for end in (ours, theirs):
            end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER)
            end.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER)
        try:
            self.process = await asyncio.create_subprocess_exec(
                *self.pool.command, str(theirs.fileno()), pass_fds=(theirs.fileno(),)
            )
        finally:
            theirs.close()
        self.control = ours
        self.started_at = time.monotonic()
        asyncio.get_running_loop().add_reader(ours.fileno(), self._readable)
        log.info("relay worker started", worker=self.slot, pid=self.process.pid)

    def send(self, message: object, fds: list[int] | None = None) -> bool:
        """False when the worker cannot take it now (gone, or its queue full)."""
        if self.control is None:
            return False
        data = pickle.dumps(message, pickle.HIGHEST_PROTOCOL)
        try:
            socket.send_fds(self.control, [data], fds or [], socket.MSG_DONTWAIT)
        except OSError:
            return False
        return True

    def _readable(self) -> None:
        control = self.control
        while control is not None:
            try:
                data = control.recv(MAX_MESSAGE, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self._died()
                return
            message: Any = pickle.loads(data)
            if message[0] == "released":
                _, group_id, ends, bounced = message
                carried = self.groups.pop(group_id, None)
                if carried is not None:
                    carried.came_back(ends, bounced)
            elif message[0] == "synced":
                for group_id, ends in message[1]:
                    carried = self.groups.get(group_id)
                    if carried is not None:
                        carried.synced(ends)

    def _died(self) -> None:
        """The worker is gone: every group it carried comes home on its last figures."""
        control, self.control = self.control, None
        if control is not None:
            asyncio.get_running_loop().remove_reader(control.fileno())
            control.close()
        groups, self.groups = self.groups, {}
        if self.pool.closing:
            return
        code = self.process.returncode if self.process is not None else None
        pid = self.process.pid if self.process is not None else None
        log.warning("relay worker died", worker=self.slot, pid=pid, code=code, calls=len(groups))
        self.pool.restarts += 1
        for carried in groups.values():
            carried.lost()
        self.pool.forget(self, early=time.monotonic() - self.started_at < EARLY_DEATH)

    async def stop(self) -> None:
        control, self.control = self.control, None
        if control is not None:
            asyncio.get_running_loop().remove_reader(control.fileno())
            control.close()  # the worker ends when its socket closes
        process = self.process
        if process is not None and process.returncode is None:
            try:
                await asyncio.wait_for(process.wait(), 2)
            except TimeoutError:
                process.kill()
                await process.wait()


class _Carried:
    """A group a worker carries: its legs, their kept sockets, their last figures."""

    def __init__(
        self,
        worker: _Worker,
        group_id: int,
        legs: list[RtpLeg],
        ends: list[RelayEnd],
        kept: list[socket.socket],
    ) -> None:
        self.worker = worker
        self.id = group_id
        self.legs = legs
        self.ends = ends  # the latest figures: at hand-over, then each sync
        self.kept = kept
        self.synced_at = time.monotonic()
        self.recalled = False
        self.back = asyncio.get_running_loop().create_future()
        self._homing: asyncio.Task[None] | None = None

    # -- Away (RtpLeg's side) ----------------------------------------------------

    def recall(self) -> None:
        if self.recalled or self.back.done():
            return
        self.recalled = True
        if not self.worker.send(("release", self.id)):
            self.worker.groups.pop(self.id, None)
            self.lost()  # a worker that cannot hear us is as good as gone

    async def returned(self) -> None:
        if not self.back.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self.back), 2)

    # -- the worker's side -------------------------------------------------------------

    def synced(self, ends: list[RelayEnd]) -> None:
        self.ends = ends
        self.synced_at = time.monotonic()
        for leg, end in zip(self.legs, ends, strict=True):
            leg.take_figures(end)

    def came_back(self, ends: list[RelayEnd], bounced: list[Bounced]) -> None:
        self.worker.pool.returns += 1
        self._homing = asyncio.get_running_loop().create_task(self._home(ends, bounced))

    def lost(self) -> None:
        """Home on the last figures, past whatever the worker sent since."""
        elapsed = time.monotonic() - self.synced_at + 1
        ends = [
            replace(
                end,
                sequence=(end.sequence + _LOST_SEQUENCE_MARGIN) & 0xFFFF,
                timestamp=(end.timestamp + int(elapsed * end.clock_rate)) & 0xFFFFFFFF,
                marker=True,
            )
            for end in self.ends
        ]
        self._homing = asyncio.get_running_loop().create_task(self._home(ends, []))

    async def _home(self, ends: list[RelayEnd], bounced: list[Bounced]) -> None:
        loop = asyncio.get_running_loop()
        pool = self.worker.pool
        try:
            for leg, end, kept in zip(self.legs, ends, self.kept, strict=True):
                leg.resume(end)
                if leg.closed:
                    kept.close()
                    continue
                await loop.create_datagram_endpoint(lambda leg=leg: leg, sock=kept)  # type: ignore[misc]
                pool.home_at[leg] = loop.time()
                if leg.relay_target is not None:
                    pool.consider(leg)
            for index, data, addr in bounced:
                leg = self.legs[index]
                if not leg.closed:
                    leg.datagram_received(data, addr)
        finally:
            if not self.back.done():
                self.back.set_result(None)


class RelayWorkers:
    """The relay worker processes of one server (``rtp.relay_workers``)."""

    def __init__(self, count: int) -> None:
        self.count = count
        # The worker's command line, its control socket's descriptor appended.
        self.command = [sys.executable, "-m", "mediaserver.media.relay_worker"]
        self.closing = False
        self.restarts = 0  # workers that died
        self.handoffs = 0  # groups handed to a worker
        self.returns = 0  # groups given back
        self.refused = 0  # hand-overs a worker's full queue refused (retried later)
        self.home_at: weakref.WeakKeyDictionary[RtpLeg, float] = weakref.WeakKeyDictionary()
        self._workers: dict[int, _Worker] = {}
        self._candidates: weakref.WeakSet[RtpLeg] = weakref.WeakSet()
        self._marks: weakref.WeakKeyDictionary[RtpLeg, int] = weakref.WeakKeyDictionary()
        self._next_id = 0
        self._early_deaths = 0  # workers in a row that died soon after starting
        self._sweeper: asyncio.Task[None] | None = None
        self._starting: set[asyncio.Task[None]] = set()

    # -- figures -----------------------------------------------------------------------

    @property
    def running(self) -> int:
        return sum(1 for worker in self._workers.values() if worker.control is not None)

    @property
    def carried_legs(self) -> int:
        workers = self._workers.values()
        return sum(len(carried.legs) for worker in workers for carried in worker.groups.values())

    # -- RelayPool (RtpLeg's side) -----------------------------------------------------

    def consider(self, leg: RtpLeg) -> None:
        if self.count < 1 or self.closing:
            return
        self._candidates.add(leg)
        if self._sweeper is None:
            # The pool's tasks are nobody's call: a fresh context, no call_id in their logs.
            self._sweeper = asyncio.get_running_loop().create_task(
                self._sweep_forever(), context=contextvars.Context()
            )
            self._worker()  # the first bridge gets the workers started

    # -- hand-over ---------------------------------------------------------------------

    async def _sweep_forever(self) -> None:
        while not self.closing:
            await asyncio.sleep(SWEEP_INTERVAL)
            self.sweep()

    def sweep(self) -> None:
        now = asyncio.get_running_loop().time()
        budget = MAX_PER_SWEEP
        for leg in list(self._candidates):
            target = leg.relay_target
            if leg.closed or target is None or leg.away is not None:
                self._candidates.discard(leg)
                continue
            group = [leg] if target is leg else [leg, target]
            if target.relay_target is not leg:
                continue  # one-way for now (the other side still decodes or plays)
            settled = [self._settled(member, now) for member in group]
            if not (all(settled) and all(member.relays_only() for member in group)):
                continue
            if not self._hand_over(group):
                return  # no worker can take more now: the next sweep goes on
            for member in group:
                self._candidates.discard(member)
            budget -= 1
            if not budget:
                return

    def _settled(self, leg: RtpLeg, now: float) -> bool:
        """No media yet (the bridge is new: it goes before its media starts), or
        ``SETTLE_PACKETS`` relayed since the previous sweep; and a couple of sweeps
        after coming home (a chatty group does not bounce back and forth)."""
        mark = self._marks.get(leg)
        self._marks[leg] = leg.packets_in
        home = self.home_at.get(leg)
        if home is not None and now - home < 2 * SWEEP_INTERVAL:
            return False
        if leg.packets_in == 0:
            return True
        return mark is not None and leg.packets_in - mark >= SETTLE_PACKETS

    def _hand_over(self, legs: list[RtpLeg]) -> bool:
        """Give a worker the group; False when none can take it now (one is
        starting, or the least loaded one has a full queue)."""
        worker = self._worker()
        if worker is None:
            return False
        self._next_id += 1
        group_id = self._next_id
        carried = _Carried(worker, group_id, legs, [], [])
        for leg in legs:
            target = leg.relay_target
            assert target is not None
            end, kept = leg.leave(carried, legs.index(target))
            carried.ends.append(end)
            carried.kept.append(kept)
        fds = [kept.fileno() for kept in carried.kept]
        if not worker.send(("adopt", group_id, carried.ends), fds):
            self.refused += 1  # its queue is full: home at once, another sweep retries
            carried.came_back(carried.ends, [])
            return False
        worker.groups[group_id] = carried
        self.handoffs += 1
        return True

    def _worker(self) -> _Worker | None:
        """The least loaded running worker; a slot without one gets it started (the
        group waits for the next sweep)."""
        running = [w for w in self._workers.values() if w.control is not None]
        if len(self._workers) < self.count:
            slot = next(i for i in range(self.count) if i not in self._workers)
            worker = self._workers[slot] = _Worker(self, slot)
            task = asyncio.get_running_loop().create_task(
                self._start(worker), context=contextvars.Context()
            )
            self._starting.add(task)
            task.add_done_callback(self._starting.discard)
        return min(running, key=lambda w: len(w.groups), default=None)

    async def _start(self, worker: _Worker) -> None:
        try:
            await worker.start()
        except OSError as exc:
            log.error("relay worker did not start", worker=worker.slot, error=str(exc))
            self.forget(worker, early=True)

    def forget(self, worker: _Worker, *, early: bool = False) -> None:
        """A dead worker's slot is free: the next hand-over starts a new one, unless
        workers keep dying as they start (then the main process relays everything)."""
        if self._workers.get(worker.slot) is worker:
            del self._workers[worker.slot]
        if worker.process is not None and worker.process.returncode is None:
            worker.process.kill()
        self._early_deaths = self._early_deaths + 1 if early else 0
        if self._early_deaths >= GIVE_UP_AFTER and self.count:
            log.error("relay workers keep dying as they start; the main process relays all")
            self.count = 0

    async def close(self) -> None:
        self.closing = True
        if self._sweeper is not None:
            self._sweeper.cancel()
        for task in list(self._starting):
            task.cancel()
        await asyncio.gather(*(w.stop() for w in self._workers.values()), return_exceptions=True)
        self._workers.clear()

"""Forking a call's media (``fork@v1``, Telnyx ``fork_start``/``fork_stop``).

The call's RTP leg does the copying (:mod:`mediaserver.media.fork`); this
module checks the request against the call, starts or stops it, and tells
the live event bus. One fork runs per call: a new ``fork_start`` replaces the
running one at once (no packet is lost or copied twice between the two), so
targets can be changed without a gap; ``fork_stop`` with nothing forking is a
:class:`~mediaserver.actions.callapi.MediaError`. The end of the call stops
the fork (the leg's ``close``).

Events (Telnyx's names): ``call.fork.started`` (``rx``, ``tx``, ``target``,
``stream_type``) and, once per fork, ``call.fork.stopped`` with ``reason``:
``stopped`` (fork_stop), ``replaced`` (a new fork_start) or ``hangup``, and
the copies sent (``received_copies``, ``sent_copies``).

In STREP headers (``target``) the call is the A leg, unless it is the callee
of a ``dial@v1`` bridge (the B leg); the call leg id is ``call_leg_id`` when
given (the Call Control API's UUID), else the call's own 8-character id.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mediaserver.actions.callapi import MediaError
from mediaserver.log import get_logger
from mediaserver.media.fork import MediaFork, check_family, fork_targets, leg_id_bytes

if TYPE_CHECKING:
    from mediaserver.calls.base import Call

log = get_logger("call")


def start_fork(
    call: Call,
    *,
    rx: str | None = None,
    tx: str | None = None,
    target: str | None = None,
    stream_type: str = "raw",
    call_leg_id: str | None = None,
) -> bool:
    """Start forking the call's media (ForkError, a ValueError, names the bad field);
    True when it replaced a running fork. CallEnded once the call is over."""
    call.check()
    targets = fork_targets(rx=rx, tx=tx, target=target, stream_type=stream_type)
    transport = call.leg.transport
    if transport is None:
        raise MediaError("the call has no media socket to fork from")
    check_family(targets, len(transport.get_extra_info("sockname") or ()) == 4)
    fork = MediaFork(
        targets,
        transport.sendto,
        call_leg_id=leg_id_bytes(call_leg_id or call.id),
        b_leg=call.bridge is not None,
    )
    previous = call.leg.start_fork(fork)
    if previous is not None:
        _stopped(call, previous)
    # The end of the call stops the fork inside the leg; it is reported from here.
    call.ended_future.add_done_callback(lambda _: _stopped(call, fork, only="hangup"))
    fields = {**targets.describe(), "stream_type": stream_type}
    log.info("fork started", call_id=call.id, **fields)
    _publish(call, "call.fork.started", **fields)
    return previous is not None


def stop_fork(call: Call) -> None:
    """Stop forking the call's media; MediaError when it is not forking."""
    call.check()
    fork = call.leg.stop_fork()
    if fork is None:
        raise MediaError("nothing to stop: the call is not forking")
    _stopped(call, fork)


def _stopped(call: Call, fork: MediaFork, *, only: str | None = None) -> None:
    """Log and publish a fork's end (when it ended for the reason ``only``, if given)."""
    reason = fork.stop_reason
    if reason is None or (only is not None and reason != only):
        return
    counts = {"received_copies": fork.received_copies, "sent_copies": fork.sent_copies}
    log.info("fork stopped", call_id=call.id, reason=reason, **fork.targets.describe(), **counts)
    _publish(call, "call.fork.stopped", reason=reason, **counts)


def _publish(call: Call, event_type: str, **fields: Any) -> None:
    if call.journal is not None:
        call.journal.events.publish(event_type, {"call_id": call.id, **fields})
    for listener in call.media_listeners:
        listener(event_type, fields)

"""Forking a call's media (``fork@v1``, Telnyx ``fork_start``/``fork_stop``).

The call's RTP leg does the copying (:mod:`mediaserver.media.fork`); this
module checks the request against the call and starts or stops it. One fork
runs per call: a new ``fork_start`` replaces the running one at once (no
packet is lost or copied twice between the two), so targets can be changed
without a gap; ``fork_stop`` with nothing forking is a
:class:`~mediaserver.actions.callapi.MediaError`. The end of the call stops
the fork (the leg's ``close``).

In STREP headers (``target``) the call is the A leg, unless it is the callee
of a ``dial@v1`` bridge (the B leg); the call leg id is ``call_leg_id`` when
given (the Call Control API's UUID), else the call's own 8-character id.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

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
        raise MediaError("fork: the call has no media socket")
    check_family(targets, len(transport.get_extra_info("sockname") or ()) == 4)
    fork = MediaFork(
        targets,
        transport.sendto,
        call_leg_id=leg_id_bytes(call_leg_id or call.id),
        b_leg=call.bridge is not None,
    )
    previous = call.leg.start_fork(fork)
    if previous is not None:
        _log_stopped(call, previous, "replaced")
    log.info("fork started", call_id=call.id, **targets.describe(), stream_type=stream_type)
    return previous is not None


def stop_fork(call: Call) -> None:
    """Stop forking the call's media; MediaError when it is not forking."""
    call.check()
    fork = call.leg.stop_fork()
    if fork is None:
        raise MediaError("nothing to stop: the call is not forking")
    _log_stopped(call, fork, "stopped")


def _log_stopped(call: Call, fork: MediaFork, how: str) -> None:
    log.info(
        f"fork {how}",
        call_id=call.id,
        **fork.targets.describe(),
        received_copies=fork.received_copies,
        sent_copies=fork.sent_copies,
    )

"""Calls refused before a scenario ran: what the operator sees of them.

Each refusal of an initial INVITE (404 no route, 488 no codec, 403 unknown
caller, 503 no RTP port...) gets an info log line naming why, a count by
reason (read by ``GET /metrics`` as ``mediaserver_calls_refused_total``)
and, when the caller had been admitted, a call record through the journal.
Unknown callers and requests over a rate limit get no record: anyone could
otherwise fill the table at the rate they can send. A 407 challenge is not a
refusal (it is a step of a normal authenticated call) and comes nowhere here.
"""

from __future__ import annotations

from collections import Counter

from mediaserver.calls.base import user_of
from mediaserver.journal import CallJournal, RefusedCall
from mediaserver.log import get_logger
from mediaserver.sip.message import REASON_PHRASES, Request

log = get_logger("ua")


class Refusals:
    def __init__(self, journal: CallJournal | None) -> None:
        self.journal = journal
        self.counts: Counter[str] = Counter()  # why -> refused INVITEs

    def add(
        self,
        request: Request,
        peer: str,
        status: int,
        reason: str | None,
        why: str,
        *,
        record: bool = True,
        scenario: str | None = None,
    ) -> None:
        """``request`` (an initial INVITE from ``peer``) was refused with ``status``."""
        self.counts[why] += 1
        caller = user_of(request.from_.uri) or str(request.from_.uri)
        called = user_of(request.to.uri) or str(request.to.uri)
        log.info(
            "call refused",
            why=why,
            status=status,
            reason=reason or REASON_PHRASES.get(status),
            peer=peer,
            caller=caller,
            called=called,
            sip_call_id=request.call_id,
        )
        if record and self.journal is not None:
            refused = RefusedCall(caller, called, request.call_id, status, why, scenario)
            self.journal.call_refused(refused)

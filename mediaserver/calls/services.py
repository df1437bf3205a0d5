"""What a call needs from the server beyond SIP and its own RTP leg.

The call switch and the dialer give every call (inbound, or placed by dial@v1 or the API) the
same :class:`CallServices`: where recordings go, the journal that indexes
them, the jitter-buffer depth for decoded legs, which RTP sources a leg may
learn, and the conference rooms and queues that calls join by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mediaserver.calls.conferences import Conferences
from mediaserver.calls.queues import CallQueues
from mediaserver.media.latching import LearnMode

if TYPE_CHECKING:
    from mediaserver.journal import CallJournal


@dataclass
class CallServices:
    recordings_dir: Path
    journal: CallJournal | None = None
    jitter_buffer_ms: int = 60
    learn_source: LearnMode = LearnMode.STREAM  # which RTP sources a leg may latch onto
    # Shared by every call: conference rooms and queues by name.
    conferences: Conferences = field(default_factory=Conferences)
    queues: CallQueues = field(default_factory=CallQueues)

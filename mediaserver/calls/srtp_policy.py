"""Whether a call's media is SRTP: ``rtp.srtp`` for the calls we answer, and
each trunk's and user's own ``srtp`` for the calls to and from them.

``off`` (plain RTP), ``optional`` (SRTP when the other end offers or takes
SDES keys) or ``required`` (no call without them); see
:mod:`mediaserver.sip.offer_answer` for what each means in SDP. The calls we
place offer keys only to a trunk or user configured for it: sending SDES
keys to a peer that never asked for them, often over plain UDP, protects
nothing and confuses some.
"""

from __future__ import annotations

from collections.abc import Iterable

from mediaserver.config import TrunkConfig, UserConfig
from mediaserver.sip.access import Admission


class SrtpPolicy:
    def __init__(
        self,
        default: str = "optional",
        trunks: Iterable[TrunkConfig] = (),
        users: Iterable[UserConfig] = (),
    ) -> None:
        self.default = default
        self.trunks = {t.name: t.srtp for t in trunks if t.srtp is not None}
        self.users: dict[str, str] = {}
        self.set_users(users)

    def set_users(self, users: Iterable[UserConfig]) -> None:
        """The users' modes (again after a reload)."""
        self.users = {u.username: u.srtp for u in users if u.srtp is not None}

    def answering(self, admission: Admission) -> str:
        """How we answer a caller: its trunk's or user's mode, else ``rtp.srtp``."""
        own = {"trunk": self.trunks, "user": self.users}.get(admission.via, {})
        return own.get(admission.name or "", self.default)

    def offering(self, *, trunk: str | None = None, user: str | None = None) -> str:
        """What we offer a trunk or a registered user; ``off`` to anyone else."""
        if trunk is not None:
            return self.trunks.get(trunk, "off")
        if user is not None:
            return self.users.get(user, "off")
        return "off"

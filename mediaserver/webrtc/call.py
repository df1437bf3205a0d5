"""A browser's call: a :class:`~mediaserver.calls.base.Call` whose signalling is
the API's WebSocket instead of a SIP dialog.

Everything media is the base class's (the leg is an ordinary RTP leg); what
SIP would carry goes to the page as JSON messages instead: ``ringing``,
``answered``, and ``hangup`` with the reason. The page hanging up (its
``hangup`` message, or the WebSocket closing) is the caller's BYE.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mediaserver.calls.base import Call
from mediaserver.media.leg import RtpLeg
from mediaserver.sip.transport import Peer, SipEndpoint

Tell = Callable[[dict[str, Any]], None]


class WebRtcCall(Call):
    direction = "inbound"

    def __init__(
        self,
        *,
        endpoint: SipEndpoint,
        leg: RtpLeg,
        browser: tuple[str, int],
        local_host: str,
        user_agent: str,
        caller: str,
        to_user: str,
        tell: Tell,
        on_finished: Callable[[Call], None],
    ) -> None:
        host, port = browser
        super().__init__(
            endpoint=endpoint,
            leg=leg,
            # Where the page's WebSocket comes from: its media comes from there too.
            peer=Peer("webrtc", host, port),
            local_host=local_host,
            user_agent=user_agent,
            sip_call_id="",  # set below from the call's own id: there is no SIP dialog
            from_user=caller,
            to_user=to_user,
            dialog_headers=[],
            on_finished=on_finished,
        )
        self.sip_call_id = f"webrtc-{self.id}"
        self._tell = tell

    def headers(self) -> dict[str, str]:
        return {}

    async def ring(self) -> None:
        self.check()
        if not self.answered:
            self._tell({"type": "ringing"})

    async def answer(self) -> None:
        self.check()
        if not self.answered:
            self.mark_answered()
            self._tell({"type": "answered"})

    async def reject(self, reason: str) -> None:
        self.check()
        if self.answered:
            raise ValueError("reject@v1: the call is already answered; use hangup@v1")
        self.end(reason, "server")
        self._tell({"type": "hangup", "reason": reason})

    async def _abandon(self, reason: str) -> None:
        self._tell({"type": "hangup", "reason": reason})

    async def _send_bye(self, reason: str) -> None:
        self._tell({"type": "hangup", "reason": reason})

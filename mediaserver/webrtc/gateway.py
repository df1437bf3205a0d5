"""From a browser's offer to a served call: the WebRTC side door of the call switch.

:meth:`WebRtcGateway.place` does for an offer what the call switch does for
an INVITE: it routes the number the page dialled, leases an RTP leg,
negotiates the answer (SRTP keyed by DTLS only: a browser offers nothing
else), makes the leg answer ICE checks, and serves the call with the
route's scenario, the leg leased exactly as long. The page is trusted as
an API client (it presented an API key): no SIP admission applies.
"""

from __future__ import annotations

from collections.abc import Callable

from mediaserver.calls.answering import answer_offer
from mediaserver.calls.switch import CallSwitch
from mediaserver.log import get_logger
from mediaserver.media.ice import IceCredentials, IceLite
from mediaserver.sip.offer_answer import NoAcceptableMedia
from mediaserver.sip.sdp import SdpError, SessionDescription
from mediaserver.sip.transport import local_address_for
from mediaserver.webrtc.call import Tell, WebRtcCall
from mediaserver.webrtc.sdp import NotWebRtc, remote_ufrag, webrtc_answer

log = get_logger("webrtc")


class OfferRefused(ValueError):
    """Why a browser's offer gets no call: a message for the page."""


class WebRtcGateway:
    def __init__(self, switch: CallSwitch) -> None:
        self.switch = switch

    async def place(
        self,
        offer_text: str,
        to: str,
        *,
        caller: str,
        browser: tuple[str, int],
        tell: Tell,
        on_call: Callable[[WebRtcCall], None] | None = None,
    ) -> None:
        """Answer ``offer_text`` (``tell`` gets ``{"type": "answer", "sdp", "call_id"}``)
        and serve the call to ``to`` until it ends; ``on_call`` is given the call
        before its scenario starts. OfferRefused when there is no call to make."""
        switch = self.switch
        scenario = switch.router(to)
        if scenario is None:
            raise OfferRefused(f"no route for {to!r}: routes in the config name what may be called")
        try:
            offer = SessionDescription.parse(offer_text)
            ufrag = remote_ufrag(offer)
        except (SdpError, NotWebRtc) as exc:
            raise OfferRefused(f"the offer is not usable SDP: {exc}") from None
        media = switch.media
        local_host = media.public_address or local_address_for(browser[0])
        async with switch.live.legs.leased() as leg:
            try:
                answer = answer_offer(
                    leg,
                    offer,
                    codecs=media.codecs,
                    local_host=local_host,
                    user_agent=switch.user_agent,
                    srtp="dtls",
                )
            except NoAcceptableMedia as exc:
                raise OfferRefused(f"no common media: {exc}") from None
            credentials = IceCredentials.new()
            sdp = webrtc_answer(answer.sdp, offer, credentials, (local_host, leg.local_port))
            # Media goes only where an authenticated check comes from (media/ice.py).
            leg.answer_ice(IceLite(credentials, ufrag))
            leg.multiplex_rtcp()  # our answer says a=rtcp-mux (webrtc/sdp.py)
            assert answer.dtls is not None  # srtp="dtls" answers nothing else
            # The browser is the DTLS client (our answer says passive, webrtc/sdp.py).
            leg.start_dtls(active=False, peer_fingerprint=answer.dtls.peer_fingerprint)
            call = WebRtcCall(
                endpoint=switch.endpoint,
                leg=leg,
                browser=browser,
                local_host=local_host,
                user_agent=switch.user_agent,
                caller=caller,
                to_user=to,
                tell=tell,
                on_finished=switch.live.finished,
            )
            call.scenario = scenario
            call.codecs = media.codecs
            call.srtp = "dtls"
            call.journal = switch.journal
            call.services = switch.services
            switch.live.add(call, call.id)
            tell({"type": "answer", "sdp": sdp.serialize(), "call_id": call.id})
            log.info("webrtc call", call_id=call.id, to=to, scenario=scenario, codec=answer.codec)
            if on_call is not None:
                on_call(call)
            await switch.serve_call(call)

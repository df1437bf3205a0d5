"""Browser calls: a WebRTC peer connection as an ordinary RTP leg of the call model.

The browser's RTCPeerConnection offers over the API's WebSocket
(``/api/webrtc``, :mod:`mediaserver.api.routes_webrtc`); the server answers as
an ICE-lite agent (:mod:`mediaserver.media.ice`) on a plain
:class:`~mediaserver.media.leg.RtpLeg`, with DTLS-SRTP
(:mod:`mediaserver.media.dtls`) and the codecs of ``rtp.codecs``. So a browser
call is a call like any other: its route's scenario runs, ``dial@v1`` bridges
it, conferences mix it, recordings record it, and its keypad's RFC 4733
digits reach ``gather@v1``. Modules: :mod:`~mediaserver.webrtc.sdp` (the
answer's WebRTC attributes), :mod:`~mediaserver.webrtc.call` (the call,
hung up over the WebSocket instead of SIP), :mod:`~mediaserver.webrtc.gateway`
(from an offer to a served call), and ``static/`` (the softphone page).
"""

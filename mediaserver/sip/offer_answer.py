"""RFC 3264 offer/answer for one audio stream over an SDP model (:mod:`mediaserver.sip.sdp`).

Theory of operation
-------------------
Negotiation is a pure function of an SDP and the local settings.
:func:`negotiate_answer` answers a remote offer: it takes the first usable
audio stream, in it the first codec *in the offer's order* that the
configuration allows, plus RFC 4733 telephone-event when offered, and rejects
every other stream with port 0 so the answer keeps one m= line per offered
m= line. :func:`make_offer` and :func:`accept_answer` are the other side, for
calls where we make the offer. Both sides yield an :class:`AudioAnswer`: what
the RTP layer needs (codec, payload types, where to send, our direction).
When nothing is usable, :class:`NoAcceptableMedia` carries the RFC 3261 20.43
warning code for the 488 response.

SRTP keys travel as SDES ``a=crypto`` lines (:mod:`mediaserver.sip.sdes`):
an RTP/SAVP offer needs a usable one; an RTP/AVP offer that carries one
anyway (a softphone's "SRTP if possible") is answered with ours too, so the
media is encrypted whenever both ends can. ``srtp`` says what we accept:
``off`` (plain RTP only), ``optional`` (the default), ``required`` (SDES or
DTLS), ``dtls`` (SRTP keyed by a DTLS handshake only, RFC 5763; our offers
then carry ``a=setup:actpass`` and our certificate's fingerprint).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mediaserver.config import SRTP_MODES  # what the config takes is what SDP may use
from mediaserver.sip.sdes import (
    SUITES,
    CryptoLine,
    SrtpKeys,
    accept_crypto,
    answer_crypto,
    offer_crypto,
    parse_crypto,
)
from mediaserver.sip.sdp import (
    DIRECTIONS,
    Attribute,
    Connection,
    MediaDescription,
    Origin,
    RtpMap,
    SdpError,
    SessionDescription,
    Timing,
)


@dataclass(frozen=True)
class CodecFormat:
    """How a codec we speak appears in SDP: the payload type we offer, its rtpmap
    clock rate and channels, and the fmtp we ask for."""

    payload_type: int
    clock_rate: int
    channels: int = 1
    fmtp: str | None = None


# By preference of nobody: rtp.codecs orders them. RFC 3551 6: static types for
# G.711 and G.722 (whose SDP clock is 8000 though it samples at 16 kHz, RFC 3551
# 4.5.2); RFC 7587 7: Opus is dynamic and always opus/48000/2.
SUPPORTED_CODECS: dict[str, CodecFormat] = {
    "PCMU": CodecFormat(0, 8000),
    "PCMA": CodecFormat(8, 8000),
    "G722": CodecFormat(9, 8000),
    "opus": CodecFormat(111, 48000, 2, "useinbandfec=1"),
}
_CANONICAL = {name.upper(): name for name in SUPPORTED_CODECS}
RTP_PROFILES = ("RTP/AVP", "RTP/AVPF")
SECURE_PROFILES = ("RTP/SAVP", "RTP/SAVPF")  # SRTP keyed by SDES (RFC 4568)
DTLS_PROFILES = ("UDP/TLS/RTP/SAVP", "UDP/TLS/RTP/SAVPF")  # SRTP keyed by DTLS (RFC 5764)
DEFAULT_PTIME = 20
DEFAULT_TELEPHONE_EVENTS = "0-16"  # RFC 4733 2.4.1: DTMF digits and flash

# RFC 3551 6, table 4: static audio payload types (name, clock rate, channels).
_STATIC_AUDIO: dict[int, tuple[str, int, int]] = {
    0: ("PCMU", 8000, 1), 3: ("GSM", 8000, 1), 4: ("G723", 8000, 1), 5: ("DVI4", 8000, 1),
    6: ("DVI4", 16000, 1), 7: ("LPC", 8000, 1), 8: ("PCMA", 8000, 1), 9: ("G722", 8000, 1),
    10: ("L16", 44100, 2), 11: ("L16", 44100, 1), 12: ("QCELP", 8000, 1), 13: ("CN", 8000, 1),
    14: ("MPA", 90000, 1), 15: ("G728", 8000, 1), 16: ("DVI4", 11025, 1),
    17: ("DVI4", 22050, 1), 18: ("G729", 8000, 1),
}  # fmt: skip

# RFC 3261 20.43: warning codes a 488 answer to an unusable offer carries.
WARNING_TEXTS = {
    302: "Incompatible transport protocol",
    304: "Media type not available",
    305: "Incompatible media format",
}

_HOLD_ADDRESSES = ("0.0.0.0", "::")  # RFC 3264 8.4: send neither RTP nor RTCP there


class NoAcceptableMedia(SdpError):
    """Nothing in an offer (or answer) can be used; the caller answers 488 with a Warning."""

    def __init__(self, reason: str, warning_code: int) -> None:
        self.reason = reason
        self.warning_code = warning_code
        self.warning_text = WARNING_TEXTS[warning_code]
        super().__init__(reason)


@dataclass(frozen=True)
class AudioAnswer:
    """The outcome of an offer/answer exchange, from our side of the call."""

    sdp: SessionDescription
    codec: str
    payload_type: int
    telephone_event_pt: int | None
    remote_address: str
    remote_port: int
    remote_rtcp: tuple[str, int] | None
    direction: str
    on_hold: bool
    ptime: int
    srtp: SrtpKeys | None = None  # the SRTP keys agreed; None: plain RTP
    telephone_event_clock: int = 8000  # RFC 4733 2.1: the rtpmap rate of telephone_event_pt
    dtls: DtlsTerms | None = None  # SRTP keys to agree by a DTLS handshake on the media path


@dataclass(frozen=True)
class DtlsTerms:
    """What the SDP says of a DTLS-SRTP handshake (RFC 5763 5): whether we are
    its client (``a=setup:active``) and the certificate fingerprint the peer
    must present (``a=fingerprint``, RFC 8122 5)."""

    active: bool
    peer_fingerprint: str


def _allowed(codecs: Sequence[str]) -> list[str]:
    unknown = [c for c in codecs if c.upper() not in _CANONICAL]
    if unknown:
        raise ValueError(f"unsupported codecs {unknown} (supported: {', '.join(SUPPORTED_CODECS)})")
    return [_CANONICAL[c.upper()] for c in codecs]


def _formats(m: MediaDescription) -> list[tuple[int, RtpMap | None]]:
    """Each payload type of an RTP stream with its rtpmap, falling back to RFC 3551 6."""
    maps = m.rtpmaps()
    out: list[tuple[int, RtpMap | None]] = []
    for fmt in m.formats:
        if not (fmt.isascii() and fmt.isdigit()):
            continue  # not an RTP payload type; parse() refuses these on RTP streams
        pt = int(fmt)
        static = _STATIC_AUDIO.get(pt)
        out.append((pt, maps.get(pt) or (RtpMap(pt, *static) if static else None)))
    return out


def _is_codec(rtpmap: RtpMap | None, name: str) -> bool:
    known = SUPPORTED_CODECS[name]
    return (
        rtpmap is not None
        and rtpmap.encoding_name.upper() == name.upper()
        and rtpmap.clock_rate == known.clock_rate
        # RFC 7587 7: opus says /2 whatever it sends; a bare opus/48000 is taken too
        and (rtpmap.channels == known.channels or name == "opus")
    )


def _telephone_event(m: MediaDescription, clock_rate: int = 8000) -> int | None:
    # RFC 4733 2.1: events use the audio codec's clock (8000 for G.711 and G.722,
    # 48000 for Opus). baresip 1.0 offers only telephone-event/8000 beside opus:
    # taken when there is none at the codec's rate, or its keys would be lost.
    events = {
        rtpmap.clock_rate: pt
        for pt, rtpmap in reversed(_formats(m))
        if rtpmap and rtpmap.encoding_name.lower() == "telephone-event"
    }
    return events.get(clock_rate, events.get(8000))


def _pick_codec(m: MediaDescription, allowed: Sequence[str]) -> tuple[str, int] | None:
    for pt, rtpmap in _formats(m):  # the offer's order wins over ours
        for name in allowed:
            if _is_codec(rtpmap, name):
                return name, pt
    return None


def _event_clock(m: MediaDescription, te_pt: int) -> int:
    """The clock rate the offer gave its telephone-event type (the answer repeats it)."""
    rtpmap = m.rtpmaps().get(te_pt)
    return 8000 if rtpmap is None else rtpmap.clock_rate


def _clock(codec: str) -> int:
    return SUPPORTED_CODECS[codec].clock_rate


def _offered_codecs(m: MediaDescription) -> str:
    names = [
        rtpmap.encoding_name if rtpmap else f"payload type {pt}"
        for pt, rtpmap in _formats(m)
        if not (rtpmap and rtpmap.encoding_name.lower() == "telephone-event")
    ]
    return ", ".join(dict.fromkeys(names)) or "none"


@dataclass(frozen=True)
class _Chosen:
    index: int
    codec: str
    payload_type: int
    telephone_event_pt: int | None
    crypto: tuple[CryptoLine, SrtpKeys] | None
    dtls: DtlsTerms | None = None


def _profiles(srtp: str, dtls: bool) -> tuple[str, ...]:
    dtls_profiles = DTLS_PROFILES if dtls else ()
    secure = SECURE_PROFILES + dtls_profiles
    modes = {"off": RTP_PROFILES, "required": secure, "dtls": dtls_profiles}
    return modes.get(srtp, RTP_PROFILES + secure)


def _dtls_terms(m: MediaDescription) -> tuple[DtlsTerms | None, NoAcceptableMedia | None]:
    """The DTLS terms of a UDP/TLS/RTP/SAVP stream (its or the session's attributes)."""
    found = {a.name: a.value or "" for a in (*m.session_attributes, *m.attributes)}
    fingerprint = found.get("fingerprint", "").strip()
    if " " not in fingerprint:
        return None, NoAcceptableMedia(f"{m.protocol} stream without a=fingerprint", 302)
    # RFC 5763 5: the offerer says actpass; an answerer should take the active role.
    setup = found.get("setup", "actpass").strip().lower()
    if setup not in ("actpass", "active", "passive"):
        return None, NoAcceptableMedia(f"{m.protocol} stream with a=setup:{setup}", 302)
    return DtlsTerms(active=setup != "active", peer_fingerprint=fingerprint), None


def _security(
    m: MediaDescription,
    srtp: str,
    new_key: Callable[[int], bytes],
    current: SrtpKeys | None,
    dtls: bool = False,
) -> tuple[tuple[CryptoLine, SrtpKeys] | DtlsTerms | None, NoAcceptableMedia | None]:
    """The crypto (SDES) or DTLS terms we answer a stream with, or why the stream
    cannot be taken; ``dtls``: whether we have a DTLS certificate to offer."""
    profile = m.protocol.upper()
    if profile in DTLS_PROFILES and dtls and srtp != "off":
        return _dtls_terms(m)
    if srtp == "dtls" or profile not in RTP_PROFILES + SECURE_PROFILES:
        allowed = ", ".join(_profiles(srtp, dtls))
        reason = (
            "no offered audio stream uses an allowed transport "
            f"(offered {m.protocol}; allowed {allowed})"
        )
        return None, NoAcceptableMedia(reason, 302)
    if srtp == "off":
        if profile in SECURE_PROFILES:
            return None, NoAcceptableMedia(f"{m.protocol} offered, but SRTP is off here", 302)
        return None, None
    offered = [a.value or "" for a in m.attributes if a.name == "crypto"]
    crypto = answer_crypto(offered, new_key, current) if offered else None
    if crypto is None and (profile in SECURE_PROFILES or srtp == "required"):
        what = (
            f"no usable a=crypto (suites: {', '.join(SUITES)}; an inline key, no MKI)"
            if offered
            else "no a=crypto"
        )
        return None, NoAcceptableMedia(f"{m.protocol} stream with {what}; SRTP is {srtp}", 302)
    return crypto, None


def _choose_stream(
    offer: SessionDescription,
    allowed: Sequence[str],
    srtp: str = "optional",
    new_key: Callable[[int], bytes] = secrets.token_bytes,
    current: SrtpKeys | None = None,
    dtls: bool = False,
) -> _Chosen:
    """The stream we take: its index, codec, payload types and SRTP keys."""
    problems: list[NoAcceptableMedia] = []
    for index, m in enumerate(offer.media):
        if m.media != "audio" or m.port == 0:
            continue
        security, problem = _security(m, srtp, new_key, current, dtls)
        if problem is not None:
            problems.append(problem)
            continue
        chosen = _pick_codec(m, allowed)
        if chosen is None:
            problems.append(
                NoAcceptableMedia(
                    f"no offered codec is allowed (offered {_offered_codecs(m)}; "
                    f"allowed {', '.join(allowed) or 'none'})",
                    305,
                )
            )
            continue
        te_pt = _telephone_event(m, _clock(chosen[0]))
        if isinstance(security, DtlsTerms):
            return _Chosen(index, chosen[0], chosen[1], te_pt, None, security)
        return _Chosen(index, chosen[0], chosen[1], te_pt, security)
    # the most specific reason: a codec mismatch beats a transport mismatch
    for code in (305, 302):
        for problem in problems:
            if problem.warning_code == code:
                raise problem
    offered = ", ".join(f"{m.media} port {m.port}" for m in offer.media) or "no m= line"
    raise NoAcceptableMedia(f"no active audio stream offered (offered {offered})", 304)


def _our_direction(remote: str, remote_holds_address: bool, local: str = "sendrecv") -> str:
    # RFC 3264 6.1: we send only if they receive, receive only if they send
    send = remote in ("sendrecv", "recvonly") and local in ("sendrecv", "sendonly")
    receive = remote in ("sendrecv", "sendonly") and local in ("sendrecv", "recvonly")
    send = send and not remote_holds_address  # RFC 3264 8.4: never send to 0.0.0.0
    return {(True, True): "sendrecv", (True, False): "sendonly", (False, True): "recvonly"}.get(
        (send, receive), "inactive"
    )


def _remote(sdp: SessionDescription, m: MediaDescription) -> tuple[str, tuple[str, int] | None]:
    connection = sdp.connection_for(m)
    if connection is None:  # parse() refuses this; only a hand-built description gets here
        raise SdpError(f"m={m.media} has no c= line and there is no session-level c=")
    address = connection.host
    rtcp = m.rtcp
    remote_rtcp = None if rtcp is None else (rtcp.address or address, rtcp.port)
    return address, remote_rtcp


def _addr_type(address: str) -> str:
    return "IP6" if ":" in address else "IP4"


def _session(
    media: list[MediaDescription],
    *,
    local_address: str,
    session_id: int,
    session_version: int,
    user_agent: str,
    timing: list[Timing] | None = None,
) -> SessionDescription:
    username = "_".join(user_agent.split()) or "-"  # RFC 8866 5.2: no spaces in <username>
    addr_type = _addr_type(local_address)
    return SessionDescription(
        origin=Origin(username, session_id, session_version, "IN", addr_type, local_address),
        session_name=user_agent or "-",
        connection=Connection(local_address, addr_type),
        timing=timing or [Timing()],
        media=media,
    )


def _rtpmap(name: str) -> str:
    known = SUPPORTED_CODECS[name]
    channels = f"/{known.channels}" if known.channels != 1 else ""
    return f"{name}/{known.clock_rate}{channels}"


def _audio_stream(
    port: int,
    protocol: str,
    codecs: list[tuple[int, str]],
    te_pts: Sequence[tuple[int, int]],
    te_events: str,
    direction: str,
    crypto: Sequence[CryptoLine] = (),
    security: Sequence[Attribute] = (),
) -> MediaDescription:
    """An m=audio section with an rtpmap for every format (and the fmtp a codec
    asks for), telephone-event at each (payload type, clock rate) of ``te_pts``,
    ptime 20, a direction and the SDES keys (or the DTLS ``security``
    attributes) when it is SRTP."""
    pts = [(pt, _rtpmap(name)) for pt, name in codecs]
    fmtps = [(pt, fmtp) for pt, name in codecs if (fmtp := SUPPORTED_CODECS[name].fmtp)]
    for te_pt, clock_rate in te_pts:
        pts.append((te_pt, f"telephone-event/{clock_rate}"))
        fmtps.append((te_pt, te_events))
    attributes = [Attribute("rtpmap", f"{pt} {encoding}") for pt, encoding in pts]
    attributes += [Attribute("fmtp", f"{pt} {params}") for pt, params in fmtps]
    attributes += [Attribute("ptime", str(DEFAULT_PTIME)), Attribute(direction)]
    attributes += [Attribute("crypto", str(line)) for line in crypto]
    attributes += security
    return MediaDescription(
        "audio", port, protocol, [str(pt) for pt, _ in pts], attributes=attributes
    )


def _check_port(port: int) -> None:
    if not 0 < port <= 65535:
        raise ValueError(f"local RTP port {port} is not in 1-65535")


def negotiate_answer(
    offer: SessionDescription,
    *,
    codecs: Sequence[str],
    local_address: str,
    local_port: int,
    session_id: int,
    session_version: int,
    user_agent: str = "mediaserver",
    srtp: str = "optional",
    new_key: Callable[[int], bytes] = secrets.token_bytes,
    current_keys: SrtpKeys | None = None,
    dtls_fingerprint: str | None = None,
) -> AudioAnswer:
    """Answer a remote offer (RFC 3264 6), or raise NoAcceptableMedia for a 488.
    ``current_keys``: the SRTP keys in use, kept when a re-offer repeats its own;
    ``dtls_fingerprint``: our DTLS certificate's (``sha-256 AB:...``), without
    which DTLS-SRTP offers are refused."""
    _check_port(local_port)
    if srtp not in SRTP_MODES:
        raise ValueError(f"srtp {srtp!r} is not one of {', '.join(SRTP_MODES)}")
    chosen = _choose_stream(
        offer, _allowed(codecs), srtp, new_key, current_keys, dtls_fingerprint is not None
    )
    index, codec, pt, te_pt = (
        chosen.index,
        chosen.codec,
        chosen.payload_type,
        chosen.telephone_event_pt,
    )
    crypto = chosen.crypto
    offered = offer.media[index]
    remote_address, remote_rtcp = _remote(offer, offered)
    holds = remote_address in _HOLD_ADDRESSES
    direction = _our_direction(offered.direction, holds)
    te_events = (offered.fmtp(te_pt) if te_pt is not None else None) or DEFAULT_TELEPHONE_EVENTS
    streams = [
        _audio_stream(
            local_port,
            m.protocol,
            [(pt, codec)],
            [] if te_pt is None else [(te_pt, _event_clock(offered, te_pt))],
            te_events,
            direction,
            [crypto[0]] if crypto else (),
            _dtls_attributes(chosen.dtls, dtls_fingerprint),
        )
        if i == index
        # RFC 3264 6: a rejected stream keeps its m= line, with port 0 and the offered formats
        else MediaDescription(m.media, 0, m.protocol, list(m.formats))
        for i, m in enumerate(offer.media)
    ]
    answer = _session(
        streams,
        local_address=local_address,
        session_id=session_id,
        session_version=session_version,
        user_agent=user_agent,
        # RFC 3264 6: the t= line of the answer equals the offer's
        timing=[Timing(t.start, t.stop) for t in offer.timing],
    )
    return AudioAnswer(
        sdp=answer,
        codec=codec,
        payload_type=pt,
        telephone_event_pt=te_pt,
        remote_address=remote_address,
        remote_port=offered.port,
        remote_rtcp=remote_rtcp,
        direction=direction,
        on_hold=holds or offered.direction in ("sendonly", "inactive"),
        ptime=offered.ptime or DEFAULT_PTIME,
        srtp=crypto[1] if crypto else None,
        dtls=chosen.dtls,
        telephone_event_clock=8000 if te_pt is None else _event_clock(offered, te_pt),
    )


def _dtls_attributes(terms: DtlsTerms | None, fingerprint: str | None) -> list[Attribute]:
    """Our side of a DTLS-SRTP answer (RFC 5763 5): our role and fingerprint."""
    if terms is None or fingerprint is None:
        return []
    return [
        Attribute("setup", "active" if terms.active else "passive"),
        Attribute("fingerprint", fingerprint),
    ]


def make_offer(
    *,
    codecs: Sequence[str],
    local_address: str,
    local_port: int,
    session_id: int,
    session_version: int,
    telephone_event_pt: int | None = 101,
    direction: str = "sendrecv",
    user_agent: str = "mediaserver",
    srtp: str = "off",
    new_key: Callable[[int], bytes] = secrets.token_bytes,
    dtls_fingerprint: str | None = None,
) -> SessionDescription:
    """Our offer: the codecs in preference order (static payload types, Opus on
    111), plus telephone-event at each codec clock rate offered (``telephone_event_pt``
    at 8000, the next type at 48000 for Opus); with ``srtp`` optional, SDES keys
    on RTP/AVP (taken if the answer has one), required, RTP/SAVP with them; dtls,
    UDP/TLS/RTP/SAVP with ``dtls_fingerprint`` (our certificate's) and either DTLS
    role (RFC 5763 5)."""
    if srtp not in SRTP_MODES:
        raise ValueError(f"srtp {srtp!r} is not one of {', '.join(SRTP_MODES)}")
    if srtp == "dtls" and dtls_fingerprint is None:
        raise ValueError("a DTLS-SRTP offer needs our certificate's fingerprint")
    allowed = _allowed(codecs)
    if not allowed:
        raise ValueError("an offer needs at least one codec")
    _check_port(local_port)
    if direction not in DIRECTIONS:
        raise ValueError(f"direction {direction!r} is not one of {', '.join(DIRECTIONS)}")
    if telephone_event_pt is not None and not 96 <= telephone_event_pt <= 127:
        # RFC 3551 3: telephone-event has no static type, it needs a dynamic one
        raise ValueError(f"telephone-event payload type {telephone_event_pt} is not in 96-127")
    names = list(dict.fromkeys(allowed))
    codec_pts = [(SUPPORTED_CODECS[name].payload_type, name) for name in names]
    te_pts: list[tuple[int, int]] = []
    if telephone_event_pt is not None:
        for clock_rate in dict.fromkeys(_clock(name) for name in names):
            taken = {pt for pt, _ in codec_pts} | {pt for pt, _ in te_pts}
            free = next((p for p in range(telephone_event_pt, 128) if p not in taken), None)
            if free is not None:
                te_pts.append((free, clock_rate))
    protocol = {"required": "RTP/SAVP", "dtls": DTLS_PROFILES[0]}.get(srtp, "RTP/AVP")
    dtls_offer = [Attribute("setup", "actpass"), Attribute("fingerprint", dtls_fingerprint or "")]
    stream = _audio_stream(
        local_port,
        protocol,
        codec_pts,
        te_pts,
        DEFAULT_TELEPHONE_EVENTS,
        direction,
        offer_crypto(new_key) if srtp in ("optional", "required") else (),
        dtls_offer if srtp == "dtls" else (),
    )
    return _session(
        [stream],
        local_address=local_address,
        session_id=session_id,
        session_version=session_version,
        user_agent=user_agent,
    )


def accept_answer(offer: SessionDescription, answer: SessionDescription) -> AudioAnswer:
    """Check the remote answer to our own offer (RFC 3264 5, 6) and say what was agreed."""
    if len(answer.media) != len(offer.media):
        # RFC 3264 6: the answer has exactly as many m= lines as the offer
        raise SdpError(
            f"the answer has {len(answer.media)} m= lines but the offer had {len(offer.media)}"
        )
    for number, (ours, theirs) in enumerate(zip(offer.media, answer.media, strict=True), 1):
        if ours.media != "audio" or ours.port == 0 or theirs.port == 0:
            continue
        if theirs.media != ours.media or theirs.protocol != ours.protocol:
            raise SdpError(
                f"answer m= line {number} is '{theirs.media} {theirs.protocol}' but the offer "
                f"had '{ours.media} {ours.protocol}'"
            )
        offered = [name for name in SUPPORTED_CODECS if _pick_codec(ours, [name])]
        chosen = _pick_codec(theirs, offered)
        if chosen is None:
            raise NoAcceptableMedia(
                f"the answer has no codec we offered (answered {_offered_codecs(theirs)}; "
                f"offered {', '.join(offered) or 'none'})",
                305,
            )
        keys = _answered_keys(ours, theirs)
        dtls = _answered_dtls(ours, theirs)
        te_pt = _telephone_event(theirs, _clock(chosen[0]))
        remote_address, remote_rtcp = _remote(answer, theirs)
        holds = remote_address in _HOLD_ADDRESSES
        return AudioAnswer(
            sdp=answer,
            codec=chosen[0],
            payload_type=chosen[1],
            telephone_event_pt=te_pt,
            telephone_event_clock=8000 if te_pt is None else _event_clock(theirs, te_pt),
            remote_address=remote_address,
            remote_port=theirs.port,
            remote_rtcp=remote_rtcp,
            direction=_our_direction(theirs.direction, holds, ours.direction),
            on_hold=holds or theirs.direction in ("sendonly", "inactive"),
            ptime=theirs.ptime or DEFAULT_PTIME,
            srtp=keys,
            dtls=dtls,
        )
    raise NoAcceptableMedia("the answer rejected every offered audio stream", 304)


def _answered_dtls(ours: MediaDescription, theirs: MediaDescription) -> DtlsTerms | None:
    """The DTLS terms of an answer to our UDP/TLS/RTP/SAVP offer: the role the
    answerer left us (RFC 5763 5: it must take ``active`` or ``passive``; no
    ``a=setup`` means active, RFC 4145 4) and the fingerprint it must present."""
    if ours.protocol.upper() not in DTLS_PROFILES:
        return None
    found = {a.name: a.value or "" for a in (*theirs.session_attributes, *theirs.attributes)}
    fingerprint = found.get("fingerprint", "").strip()
    if " " not in fingerprint:
        raise NoAcceptableMedia(f"the {ours.protocol} answer has no a=fingerprint", 302)
    setup = found.get("setup", "active").strip().lower()
    if setup not in ("active", "passive"):
        raise NoAcceptableMedia(
            f"the answer says a=setup:{setup}; an answerer takes active or passive", 302
        )
    return DtlsTerms(active=setup == "passive", peer_fingerprint=fingerprint)


def _answered_keys(ours: MediaDescription, theirs: MediaDescription) -> SrtpKeys | None:
    """The SRTP keys of an answer to our offer; None for plain RTP (an RTP/AVP
    offer's keys were only a proposal). RTP/SAVP without usable keys is refused."""
    lines = [parse_crypto(a.value or "") for a in ours.attributes if a.name == "crypto"]
    offered = [line for line in lines if line is not None]
    if not offered:
        return None
    keys = accept_crypto(offered, [a.value or "" for a in theirs.attributes if a.name == "crypto"])
    if keys is None and ours.protocol.upper() in SECURE_PROFILES:
        raise NoAcceptableMedia(f"the {ours.protocol} answer has no a=crypto for our keys", 302)
    return keys

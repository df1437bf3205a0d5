"""What is fuzzed, and what each parser promises about hostile input.

Each :class:`Target` pairs a hypothesis strategy (valid seeds, mutated, and
inputs built from the grammar's pieces) with a check that feeds one input to
the project's own parser and fails on anything but the parser's documented
refusal: ``SipParseError`` for SIP, ``FramingError`` for the TCP framer,
``SdpError`` for SDP, ``ValueError`` for RFC 4733 payloads, ``RtcpError``
for RTCP, ``ProblemsError`` for scenario YAML and ``ResponseError`` for Call
Flow answers. What a parser accepts must then be usable by the code that
reads it next (a request that passes ``request_problem`` has a Via, a From,
a To and a CSeq to answer with; an accepted SDP offer can be answered). The
HTTP API target is in :mod:`tests.fuzz.api`: it needs a running server.

The suite runs each target for a bounded number of examples
(``tests/fuzz/test_fuzz_parsers.py``); ``scripts/fuzz`` runs them for minutes.
"""

from __future__ import annotations

import contextlib
import json
import string
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from mediaserver.actions.scenario import load_scenario_data, load_scenario_text
from mediaserver.callflow.actions import ResponseError, parse_response
from mediaserver.callflow.translate import compile_plan
from mediaserver.media.dtmf import DtmfReceiver, decode_event
from mediaserver.media.rtcp import RtcpError, parse_compound
from mediaserver.media.rtp import RtpError, parse_rtp
from mediaserver.sip.digest import Credentials, DigestError, parse_challenges
from mediaserver.sip.framing import FramingError, KeepAlive, StreamFramer
from mediaserver.sip.message import (
    Request,
    SipParseError,
    make_response,
    parse_message,
    request_problem,
    response_problem,
)
from mediaserver.sip.offer_answer import negotiate_answer
from mediaserver.sip.sdp import SdpError, SessionDescription
from mediaserver.sip.session_timer import negotiate
from mediaserver.sip.uri import SipSyntaxError, Via
from mediaserver.yamlsource import ProblemsError


@dataclass(frozen=True)
class Target:
    name: str
    inputs: st.SearchStrategy[Any]
    check: Callable[[Any], None]


# -- mutation of valid seeds -------------------------------------------------------------

# Pieces that parsers split on or count with: separators, quotes, numbers at their limits.
TOKENS = [
    b"\r\n", b"\n", b"\r", b"\r\n\r\n", b" ", b"\t", b":", b";", b",", b"=", b"<", b">", b'"',
    b"\\", b"%", b"%00", b"%zz", b"@", b"[", b"]", b"::1", b"0", b"-1", b"65536", b"4294967296",
    b"99999999999999999999", b"\x00", b"\xff", b"\xc3\x28", b"sip:", b"tel:", b"SIP/2.0",
    b"Content-Length: ", b"Content-Length: 99999", b"Via: ", b"CSeq: ", b"1 INVITE", b"m=",
    b"a=rtpmap:", b"c=IN IP4 ", b"IN IP6", b"0.0.0.0", b"RTP/AVP", b"/", b"*", b"a" * 300,
]  # fmt: skip


BINARY_NOISE = st.binary(min_size=1, max_size=4)
TEXT_NOISE = st.text(alphabet=string.printable, min_size=1, max_size=4).map(str.encode)


@st.composite
def mutated(
    draw: st.DrawFn,
    seeds: list[bytes],
    tokens: list[bytes] = TOKENS,
    noise: st.SearchStrategy[bytes] = BINARY_NOISE,
) -> bytes:
    """A seed with a few edits: bytes replaced, tokens inserted, ranges cut or repeated.

    Few edits, mostly at line boundaries, so most inputs still get past the first checks
    and reach the code behind them."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(data)))
        if draw(st.booleans()):
            # Snap to the start of a line or to just after a separator: where values begin.
            starts = [i + 1 for i, b in enumerate(data) if b in b"\n:;=, "] or [0]
            at = draw(st.sampled_from(starts))
        edit = draw(st.integers(0, 5))
        if edit == 0:  # overwrite a few bytes
            data[at : at + 1] = draw(noise)
        elif edit == 1:
            data[at:at] = draw(st.sampled_from(tokens))
        elif edit == 2:
            data[at : at + draw(st.integers(1, 40))] = b""
        elif edit == 3:  # repeat a range (duplicate headers, lines, chunks)
            end = min(len(data), at + draw(st.integers(1, 80)))
            data[at:at] = data[at:end] * draw(st.integers(1, 3))
        elif edit == 4:  # replace the rest of the line with a token (a value of another kind)
            end = data.find(b"\n", at)
            data[at : len(data) if end < 0 else end] = draw(st.sampled_from(tokens))
        else:
            data[at:at] = draw(noise)
    return bytes(data)


def text_of(data: st.SearchStrategy[bytes]) -> st.SearchStrategy[str]:
    return data.map(lambda b: b.decode("utf-8", "replace"))


# -- SIP ---------------------------------------------------------------------------------

SDP_OFFER = (
    b"v=0\r\no=alice 2890844526 2890844526 IN IP4 127.0.0.1\r\ns=-\r\n"
    b"c=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 49170 RTP/AVP 0 8 101\r\n"
    b"a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
    b"a=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
)


def _request(method: bytes, extra: bytes = b"", body: bytes = b"") -> bytes:
    return (
        method + b" sip:echo@127.0.0.1:5060 SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-fuzz;rport\r\n"
        b"Max-Forwards: 70\r\n"
        b'From: "Fuzz" <sip:fuzz@127.0.0.1:5070>;tag=f1\r\n'
        b"To: <sip:echo@127.0.0.1>\r\n"
        b"Call-ID: fuzz-1@127.0.0.1\r\n"
        b"CSeq: 1 " + method + b"\r\n"
        b"Contact: <sip:fuzz@127.0.0.1:5070>\r\n" + extra + b"Content-Length: "
        + str(len(body)).encode() + b"\r\n\r\n" + body
    )  # fmt: skip


SIP_SEEDS = [
    _request(b"INVITE", b"Content-Type: application/sdp\r\nSession-Expires: 1800;refresher=uac\r\n"
             b"Supported: timer, 100rel\r\nMin-SE: 90\r\n", SDP_OFFER),
    _request(b"OPTIONS", b"Accept: application/sdp\r\n"),
    _request(b"REGISTER", b"Expires: 3600\r\nAuthorization: Digest username=\"a\", realm=\"r\", "
             b'nonce="n", uri="sip:127.0.0.1", response="0123456789abcdef0123456789abcdef", '
             b"algorithm=MD5, qop=auth, nc=00000001, cnonce=\"c\"\r\n"),
    _request(b"BYE", b"Reason: Q.850;cause=16\r\nRoute: <sip:127.0.0.1;lr>\r\n"),
    _request(b"INFO", b"Content-Type: application/dtmf-relay\r\n", b"Signal=5\r\nDuration=160\r\n"),
    b"SIP/2.0 401 Unauthorized\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-1\r\n"
    b"From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:b@127.0.0.1>;tag=2\r\nCall-ID: c@h\r\n"
    b'CSeq: 1 REGISTER\r\nWWW-Authenticate: Digest realm="r", nonce="n", qop="auth,auth-int", '
    b"algorithm=SHA-256, opaque=\"o\", stale=FALSE\r\nContent-Length: 0\r\n\r\n",
    b"SIP/2.0 200 OK\r\nv: SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bK-2;received=1.2.3.4\r\n"
    b"f: <sip:a@127.0.0.1>;tag=1\r\nt: <sip:b@127.0.0.1>;tag=2\r\ni: c@h\r\nCSeq: 2 INVITE\r\n"
    b"m: <sip:b@[::1]:5062;transport=tcp>\r\nc: application/sdp\r\nl: 0\r\n\r\n",
]  # fmt: skip

HEADER_NAMES = [
    "Via", "v", "From", "f", "To", "t", "Call-ID", "i", "CSeq", "Contact", "m", "Content-Length",
    "l", "Content-Type", "c", "Max-Forwards", "Route", "Record-Route", "Require", "Supported",
    "Session-Expires", "x", "Min-SE", "Authorization", "WWW-Authenticate", "Expires", "Accept",
    "Reason", "Refer-To", "r", "Replaces", "Event", "Allow",
]  # fmt: skip
VALUE_PIECES = [
    "sip:a@127.0.0.1", "<sip:b@[::1]:5060;lr>", '"Name \\" q"', ";tag=1", ";branch=z9hG4bK",
    "SIP/2.0/UDP", "SIP/2.0/TCP 127.0.0.1:0", "127.0.0.1:99999", "1 INVITE", "2147483648 BYE",
    "Digest", ' realm="r"', ",", ";refresher=uas", "90", "-5", "application/sdp", "*", "  ",
    "%41", "tel:+331", ";rport", ";received=x", "= ", '"', "<", ">", "timer",
]  # fmt: skip


METHODS = ["INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "UPDATE", "REFER", "NOTIFY",
           "X", "SIP/2.0 200 OK"]  # fmt: skip


MANDATORY = {
    "Via": "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-p",
    "Max-Forwards": "70",
    "From": "<sip:fuzz@127.0.0.1>;tag=p",
    "To": "<sip:echo@127.0.0.1>",
    "Call-ID": "pieces@127.0.0.1",
}


@st.composite
def sip_from_pieces(draw: st.DrawFn) -> bytes:
    """The mandatory headers, each valid or made of pieces, then other headers of pieces."""
    method = draw(st.sampled_from(METHODS))
    start = method if method.startswith("SIP/") else f"{method} sip:echo@127.0.0.1 SIP/2.0"
    cseq = f"1 {method if not method.startswith('SIP/') else 'INVITE'}"
    lines = [start]
    for name, value in [*MANDATORY.items(), ("CSeq", cseq)]:
        if draw(st.integers(0, 3)) == 0:
            value = " ".join(draw(st.lists(st.sampled_from(VALUE_PIECES), max_size=5)))
        lines.append(f"{name}: {value}")
    for _ in range(draw(st.integers(0, 8))):
        name = draw(st.sampled_from(HEADER_NAMES))
        pieces = draw(st.lists(st.sampled_from(VALUE_PIECES), max_size=5))
        lines.append(f"{name}:{' '.join(pieces)}")
    lines = draw(st.permutations(lines[1:])) if draw(st.integers(0, 5)) == 0 else lines[1:]
    body = draw(st.sampled_from([b"", SDP_OFFER, b"x" * 10]))
    head = "\r\n".join([start, *lines])
    if draw(st.booleans()):
        head += f"\r\nContent-Length: {len(body)}"
    return (head + "\r\n\r\n").encode() + body


sip_messages = st.one_of(
    mutated(SIP_SEEDS), mutated(SIP_SEEDS), sip_from_pieces(), sip_from_pieces(),
    st.binary(max_size=300),
)  # fmt: skip


def check_sip_message(data: bytes) -> None:
    """Parse as a datagram; whatever passes the checks can be read and answered."""
    try:
        message = parse_message(data, datagram=True)
    except SipParseError as exc:
        if isinstance(exc.partial, Request):
            _answer(exc.partial, exc.status, exc.reason)
        return
    if not isinstance(message, Request):
        if response_problem(message) is None:
            _ = (message.cseq, message.from_, message.to, message.top_via, message.call_id)
            _header_parsers(message.headers.get_all("WWW-Authenticate"), challenge=True)
        return
    problem = request_problem(message)
    if problem is not None:
        _answer(message, *problem)
        return
    # What the transport and the user agent read from every well-formed request.
    Via.parse(message.headers.get_list("Via")[0])
    _ = (message.call_id, message.cseq, message.from_, message.to, message.request_uri)
    _header_parsers(message.headers.get_all("Authorization"), challenge=False)
    negotiate(message)
    _answer(message, 200, "OK")


def _answer(request: Request, status: int, reason: str) -> None:
    """Our answer to it (a stateless 4xx or a 200) encodes and parses back."""
    encoded = make_response(request, status, reason).encode()
    try:
        parse_message(encoded, datagram=True)
    except SipParseError as exc:
        # A request too broken to echo its headers back: the answer may be refused too,
        # but never by anything but the parser's own error.
        assert exc.reason


def _header_parsers(values: list[str], *, challenge: bool) -> None:
    for value in values:
        try:
            if challenge:
                parse_challenges(value)
            else:
                Credentials.parse(value)
        except (DigestError, SipSyntaxError):
            pass


@st.composite
def stream_chunks(draw: st.DrawFn) -> list[bytes]:
    """Several messages and pings on one TCP stream, cut at arbitrary points."""
    parts = draw(st.lists(st.one_of(mutated(SIP_SEEDS), st.just(b"\r\n\r\n"), st.just(b"\r\n")),
                          min_size=1, max_size=4))  # fmt: skip
    stream = b"".join(parts)
    cuts = sorted(draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    return [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]


def check_stream(chunks: list[bytes]) -> None:
    """Frames never invent bytes; each framed message parses or gives SipParseError."""
    framer = StreamFramer(max_message_size=4096)
    total = sum(len(c) for c in chunks)
    framed = 0
    try:
        for chunk in chunks:
            for item in framer.feed(chunk):
                if isinstance(item, KeepAlive):
                    framed += 4
                    continue
                framed += len(item)
                with contextlib.suppress(SipParseError):
                    parse_message(item, datagram=False)
    except FramingError:
        return
    assert framed + framer.buffered <= total


# -- SDP ---------------------------------------------------------------------------------

SDP_SEEDS = [
    SDP_OFFER,
    SDP_OFFER.replace(b"IN IP4 127.0.0.1", b"IN IP6 ::1").replace(b"sendrecv", b"sendonly"),
    b"v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns= \r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n"
    b"m=video 0 RTP/AVP 31\r\nm=audio 4000 RTP/SAVP 8\r\na=rtcp:4001 IN IP4 10.0.0.1\r\n"
    b"m=audio 4002 RTP/AVP 96\r\na=rtpmap:96 opus/48000/2\r\nb=AS:64\r\na=inactive\r\n",
]
SDP_TOKENS = [*TOKENS, b"a=rtpmap:101 telephone-event/8000", b"a=fmtp:101 0-15", b"a=ptime:0",
              b"a=rtcp:", b"m=audio 1 RTP/AVP", b"c=IN IP4 224.2.1.1/127/3", b"t=1 0",
              b"o=- x y IN IP4 h"]  # fmt: skip

sdp_bodies = st.one_of(
    mutated(SDP_SEEDS, SDP_TOKENS), mutated(SDP_SEEDS, SDP_TOKENS, TEXT_NOISE),
    st.binary(max_size=200),
)  # fmt: skip


def check_sdp(data: bytes) -> None:
    """Parse an offer; an accepted one gets an answer or NoAcceptableMedia (488)."""
    try:
        offer = SessionDescription.parse(data)
    except SdpError:
        return
    offer.serialize()
    try:
        answer = negotiate_answer(
            offer, codecs=["PCMU", "PCMA"], local_address="127.0.0.1", local_port=40000,
            session_id=1, session_version=1,
        )  # fmt: skip
    except SdpError:
        return
    SessionDescription.parse(answer.sdp.serialize())


# -- RTP, RFC 4733 and RTCP -----------------------------------------------------------------


@st.composite
def dtmf_streams(draw: st.DrawFn) -> list[tuple[int, bytes, float]]:
    """Telephone-event payloads (some the wrong size) with timestamps and arrival times."""
    packets = []
    now = 0.0
    for _ in range(draw(st.integers(1, 30))):
        now += draw(st.floats(0, 0.5))
        timestamp = draw(st.integers(0, 2**32 - 1))
        payload = draw(st.one_of(st.binary(min_size=4, max_size=4), st.binary(max_size=8)))
        packets.append((timestamp, payload, now))
    return packets


def check_dtmf(packets: list[tuple[int, bytes, float]]) -> None:
    receiver = DtmfReceiver()
    for timestamp, payload, now in packets:
        with contextlib.suppress(ValueError):
            decode_event(payload)
        for digit in receiver.handle_packet(timestamp, payload, now):
            assert digit.key in "0123456789*#ABCD"
        deadline = receiver.next_deadline()
        if deadline is not None:
            receiver.poll(deadline)


RTCP_SEEDS = [
    # SR with one report block, then SDES with a CNAME, then BYE with a reason.
    bytes.fromhex(
        "81c8000c0000000100000000000000000000000000000000000000000000000200000000"
        "0000000000000000000000000000000081ca00040000000101066d6564696100000000"
        "81cb00030000000104627965"
    ),
    bytes.fromhex("80c9000100000001"),
    bytes.fromhex("a0c90001000000010000"),
]

rtcp_packets = st.one_of(mutated(RTCP_SEEDS, [b"\x00" * 4, b"\xff" * 4, b"\x81\xc8", b"\x81\xca"]),
                         st.binary(max_size=120))  # fmt: skip


def check_rtcp(data: bytes) -> None:
    for reduced in (False, True):
        with contextlib.suppress(RtcpError):
            parse_compound(data, reduced_size=reduced)
    with contextlib.suppress(RtpError):
        parse_rtp(data)


# -- scenario YAML -----------------------------------------------------------------------

YAML_SEEDS = [
    b"name: fuzz\nbranches:\n  inbound-call:\n    actions:\n      - action: answer@v1\n"
    b"      - action: say@v1\n        params: {text: hello, voice: female}\n",
    b"variables:\n  $n: 1\n  $list: &l [a, b]\n  $copy: *l\ndefaults: {language: en}\n"
    b"branches:\n  inbound-call:\n    actions:\n      - action: gather@v1\n"
    b"        params: {max_digits: 4, timeout: 5}\n        result: $code\n"
    b"      - action: goto@v1\n        params: {label: done}\n      - label: done\n"
    b"        action: hangup@v1\n",
    b"branches:\n  api-initiated:\n    actions:\n      - action: set@v1\n"
    b"        params: {$x: \"'a' + 1\"}\n      - action: log@v1\n"
    b'        params: {message: "${$x}"}\n',
]
# The example scenarios too, without their name (the fuzzed file is fuzz.yaml).
YAML_SEEDS += [
    b"\n".join(line for line in path.read_bytes().splitlines() if not line.startswith(b"name:"))
    for path in sorted((Path(__file__).parents[2] / "configs" / "scenarios").glob("*.yaml"))
]
YAML_TOKENS = [*TOKENS, b"!!int ", b"!!float ", b"!!bool ", b"!!timestamp ", b"!!binary ",
               b"!!set ", b"!!omap ", b"!!python/object ", b"&a ", b"*a", b"<<: ", b"? ",
               b"- ", b"{", b"}", b"|\n", b">-\n", b"---\n", b"...\n", b"~", b".nan",
               b"0x1F", b"2001-12-14", b"[[[[[[[[[[", b"\xef\xbb\xbf", b"#",
               # Double-quoted escapes give characters a YAML file cannot hold raw.
               b'"\\x00"', b'"\\ud800"', b'"\\U0010FFFF"', b'"${\\x00}"', b"${", b"$"]  # fmt: skip

yaml_documents = text_of(
    st.one_of(
        mutated(YAML_SEEDS, YAML_TOKENS, TEXT_NOISE), mutated(YAML_SEEDS, YAML_TOKENS, TEXT_NOISE),
        mutated(YAML_SEEDS, YAML_TOKENS), st.binary(max_size=200),
    )
)  # fmt: skip


def check_scenario(text: str) -> None:
    """A scenario loads, or every problem is named with a line in the file."""
    try:
        load_scenario_text(text, "fuzz.yaml")
    except ProblemsError as exc:
        assert exc.problems
        for problem in exc.problems:
            assert problem.file == "fuzz.yaml" and problem.mark.line >= 1, problem


# -- Call Flow JSON answers --------------------------------------------------------------

CALLFLOW_SEEDS = [
    {"actions": [{"type": "say", "text": "hello", "voice": "en-US"},
                 {"type": "collect", "maxDigits": 4, "timeout": 5,
                  "actions": [{"type": "play", "url": "http://127.0.0.1/a.wav"}]},
                 {"type": "if", "condition": "a == 1", "then": [{"type": "hangup"}],
                  "else": [{"type": "goto", "label": "top"}]},
                 {"type": "label", "name": "top"}]},
    [{"type": "dial", "to": "+33100000000", "timeout": 30}, {"type": "record"}],
    {"type": "redirect", "url": "http://127.0.0.1/next"},
]  # fmt: skip

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
ACTION_TYPES = ["say", "play", "pause", "collect", "conference", "transfer", "dial", "queue",
                "record", "recordMessage", "redirect", "reject", "hangup", "if", "goto",
                "label", "foreach", "sessionData", "webhook", "stop", "detect", "sms",
                "assign", "nosuch"]  # fmt: skip


@st.composite
def callflow_answers(draw: st.DrawFn) -> Any:
    """A seed with some fields replaced by random JSON, or actions of random shape."""
    choice = draw(st.integers(0, 2))
    if choice == 0:
        data = json.loads(json.dumps(draw(st.sampled_from(CALLFLOW_SEEDS))))
        _replace_some(draw, data)
        return data
    if choice == 1:
        actions = []
        for _ in range(draw(st.integers(0, 4))):
            action = draw(st.dictionaries(st.sampled_from(
                ["text", "url", "actions", "then", "else", "label", "name", "to", "timeout",
                 "maxDigits", "condition", "items", "method", "list", "value", "key"]),
                json_values, max_size=4))  # fmt: skip
            action["type"] = draw(st.sampled_from(ACTION_TYPES))
            actions.append(action)
        return {"actions": actions}
    return draw(json_values)


def _replace_some(draw: st.DrawFn, data: Any) -> None:
    if isinstance(data, dict):
        for key in list(data):
            if draw(st.integers(0, 3)) == 0:
                data[key] = draw(json_values)
            else:
                _replace_some(draw, data[key])
    elif isinstance(data, list):
        for item in data:
            _replace_some(draw, item)


def check_callflow(data: Any) -> None:
    try:
        plan = compile_plan(parse_response(data), "http://127.0.0.1/flow", load_scenario_data)
    except ResponseError as exc:
        assert exc.problems and all(isinstance(p, str) and p for p in exc.problems)
        return
    assert plan is not None


TARGETS = {
    target.name: target
    for target in [
        Target("sip-message", sip_messages, check_sip_message),
        Target("sip-stream", stream_chunks(), check_stream),
        Target("sdp", sdp_bodies, check_sdp),
        Target("rfc4733", dtmf_streams(), check_dtmf),
        Target("rtcp", rtcp_packets, check_rtcp),
        Target("scenario-yaml", yaml_documents, check_scenario),
        Target("callflow-json", callflow_answers(), check_callflow),
    ]
}

"""Framing SIP messages on a byte stream (RFC 3261 18.3, RFC 5626 3.5.1)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mediaserver.sip.framing import FramingError, KeepAlive, StreamFramer
from mediaserver.sip.message import MAX_MESSAGE_SIZE, Request, SipParseError, parse_message


def message(body: bytes = b"", *, cseq: int = 1, length_header: str | None = "Content-Length",
            extra: tuple[str, ...] = ()) -> bytes:  # fmt: skip
    lines = [
        "MESSAGE sip:bob@biloxi.example.com SIP/2.0",
        f"Via: SIP/2.0/TCP pc33.atlanta.example.com;branch=z9hG4bK{cseq}",
        "Max-Forwards: 70",
        "From: <sip:alice@atlanta.example.com>;tag=49583",
        "To: <sip:bob@biloxi.example.com>",
        "Call-ID: asd88asd77a@1.2.3.4",
        f"CSeq: {cseq} MESSAGE",
        *extra,
    ]
    if length_header is not None:
        lines.append(f"{length_header}: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def feed_all(framer: StreamFramer, chunks: list[bytes]) -> list[bytes | KeepAlive]:
    out: list[bytes | KeepAlive] = []
    for chunk in chunks:
        out.extend(framer.feed(chunk))
    return out


BODY = b"Watson, come here.\r\n\r\nI want to see you.\r\n"


def test_one_message_in_one_chunk() -> None:
    framer = StreamFramer()
    data = message(BODY)
    assert framer.feed(data) == [data]
    assert framer.buffered == 0
    req = parse_message(data, datagram=False)
    assert isinstance(req, Request) and req.body == BODY


def test_one_message_fed_byte_by_byte() -> None:
    framer = StreamFramer()
    data = message(BODY)
    out = []
    for i in range(len(data)):
        got = framer.feed(data[i : i + 1])
        if i < len(data) - 1:
            assert got == [], f"message emitted early at byte {i}"
        out.extend(got)
    assert out == [data]
    assert framer.buffered == 0


@pytest.mark.parametrize("body", [b"", BODY], ids=["no-body", "body"])
def test_one_message_split_at_every_offset(body: bytes) -> None:
    data = message(body)
    for cut in range(len(data) + 1):
        framer = StreamFramer()
        first = framer.feed(data[:cut])
        assert first == ([data] if cut == len(data) else [])
        assert first + framer.feed(data[cut:]) == [data], f"split at {cut}"
        assert framer.buffered == 0


def test_content_length_anywhere_in_the_headers() -> None:
    # The length header is often last, but need not be.
    data = message(BODY, length_header=None, extra=(f"Content-Length: {len(BODY)}", "Subject: x"))
    framer = StreamFramer()
    assert framer.feed(data + message(cseq=2)) == [data, message(cseq=2)]


def test_several_messages_in_one_chunk() -> None:
    msgs = [message(b"one", cseq=1), message(cseq=2), message(BODY, cseq=3)]
    framer = StreamFramer()
    assert framer.feed(b"".join(msgs)) == msgs
    assert framer.buffered == 0


def test_body_split_across_chunks() -> None:
    data = message(BODY)
    head_len = data.index(b"\r\n\r\n") + 4
    framer = StreamFramer()
    assert framer.feed(data[: head_len + 3]) == []
    assert framer.buffered == head_len + 3
    assert framer.feed(data[head_len + 3 : -1]) == []
    assert framer.feed(data[-1:] + b"INV") == [data]
    assert framer.buffered == 3


def test_keepalive_pings_between_messages() -> None:
    # RFC 5626 3.5.1: CRLFCRLF is a ping, answered by the transport with CRLF.
    a, b = message(cseq=1), message(b"x", cseq=2)
    framer = StreamFramer()
    out = framer.feed(b"\r\n\r\n" + a + b"\r\n\r\n\r\n\r\n" + b)
    assert out == [KeepAlive(), a, KeepAlive(), KeepAlive(), b]


def test_keepalive_split_across_chunks() -> None:
    framer = StreamFramer()
    assert framer.feed(b"\r") == []
    assert framer.feed(b"\n\r") == []
    assert framer.feed(b"\n") == [KeepAlive()]
    assert framer.buffered == 0


def test_stray_crlfs_before_a_message_are_ignored() -> None:
    # RFC 3261 7.5: CRLFs before a start line are skipped.
    data = message()
    framer = StreamFramer()
    assert framer.feed(b"\r\n") == []  # could still become a ping
    assert framer.buffered == 2
    assert framer.feed(data) == [data]
    framer = StreamFramer()
    assert framer.feed(b"\n\n\r\r\n" + data) == [data]
    framer = StreamFramer()
    assert framer.feed(b"\n\r\n\r\n" + data) == [KeepAlive(), data]


def test_missing_content_length_means_no_body() -> None:
    # RFC 3261 18.3: mandatory on streams; framing assumes 0 and the parser answers 400.
    data = message(length_header=None)
    framer = StreamFramer()
    assert framer.feed(data + message(cseq=2)) == [data, message(cseq=2)]
    with pytest.raises(SipParseError, match="Missing Content-Length header") as info:
        parse_message(data, datagram=False)
    assert info.value.partial is not None


@pytest.mark.parametrize("name", ["l", "L", "content-length", "CONTENT-LENGTH", "Content-Length "])
def test_compact_and_any_case_content_length(name: str) -> None:
    data = message(BODY, length_header=name)
    assert StreamFramer().feed(data + b"\r\n\r\n") == [data, KeepAlive()]


def test_folded_content_length() -> None:
    data = message(b"abc", length_header=None, extra=("Content-Length:", "   3"))
    assert StreamFramer().feed(data) == [data]
    req = parse_message(data, datagram=False)
    assert req.body == b"abc"


def test_unreadable_content_length_is_left_to_the_parser() -> None:
    data = message(length_header=None, extra=("Content-Length: -5",))
    assert StreamFramer().feed(data) == [data]
    data = message(length_header=None, extra=("Content-Length: \u00b2",))
    assert StreamFramer().feed(data) == [data]


def test_first_content_length_wins_as_in_the_parser() -> None:
    data = message(b"abc", length_header=None, extra=("Content-Length: 3", "l: 0"))
    assert StreamFramer().feed(data) == [data]
    assert parse_message(data, datagram=False).body == b"abc"


def test_lf_only_line_ends() -> None:
    data = message(BODY).replace(b"\r\n", b"\n")
    body = data[data.index(b"\n\n") + 2 :]
    data = data[: len(data) - len(body)] + BODY  # keep the body as sent, CRLFs and all
    framer = StreamFramer()
    assert framer.feed(data + data) == [data, data]
    assert parse_message(data, datagram=False).body == BODY


def test_content_length_header_in_the_body_is_not_used() -> None:
    body = b"l: 500\r\n"
    data = message(body)
    assert StreamFramer().feed(data) == [data]


def test_oversize_headers_raise() -> None:
    framer = StreamFramer(max_message_size=1000)
    assert framer.feed(b"INVITE sip:a@b SIP/2.0\r\n") == []
    with pytest.raises(FramingError, match="headers exceed"):
        framer.feed(b"X-Pad: " + b"p" * 1000 + b"\r\n")


def test_oversize_declared_body_raises_before_it_arrives() -> None:
    framer = StreamFramer(max_message_size=1000)
    with pytest.raises(FramingError, match="message exceeds"):
        framer.feed(message(length_header=None, extra=("Content-Length: 990",)))
    with pytest.raises(FramingError, match="message exceeds"):
        StreamFramer().feed(message(length_header=None, extra=("l: 99999999999999999999",)))
    with pytest.raises(FramingError, match="message exceeds"):
        StreamFramer().feed(message(length_header=None, extra=("l: " + "9" * 5000,)))
    padded = message(b"ab", length_header=None, extra=("l: " + "0" * 5000 + "2",))
    assert StreamFramer().feed(padded) == [padded]


def test_message_of_exactly_the_maximum_size() -> None:
    room = MAX_MESSAGE_SIZE - len(message(b"x" * 10_000)) + 10_000
    data = message(b"x" * room)
    assert len(data) == MAX_MESSAGE_SIZE
    assert StreamFramer().feed(data) == [data]
    with pytest.raises(FramingError):
        StreamFramer().feed(message(b"x" * (room + 1)))


@pytest.mark.parametrize("shape", ["large head", "large body"])
def test_byte_by_byte_feeding_stays_linear(shape: str) -> None:
    # The search for the head's end resumes where it stopped, and the head is read once.
    if shape == "large head":
        data = message(extra=tuple(f"X-H{i}: {'v' * 200}" for i in range(150)))
    else:
        data = message(b"b" * 60_000, extra=tuple(f"X-H{i}: v" for i in range(100)))
    framer = StreamFramer()
    out = feed_all(framer, [data[i : i + 1] for i in range(len(data))] + [b"\r\n\r\n"])
    assert out == [data, KeepAlive()]


# ---------------------------------------------------------------------------
# Properties

_bodies = st.binary(max_size=120)


@st.composite
def streams(draw: st.DrawFn) -> tuple[list[bytes | KeepAlive], bytes]:
    items: list[bytes | KeepAlive] = []
    stream = b""
    for i in range(draw(st.integers(1, 5))):
        if draw(st.booleans()):
            stream += b"\r\n\r\n"
            items.append(KeepAlive())
        name = draw(st.sampled_from(["Content-Length", "l", "CONTENT-LENGTH", "content-length"]))
        data = message(draw(_bodies), cseq=i + 1, length_header=name)
        stream += data
        items.append(data)
    return items, stream


@settings(max_examples=300)
@given(streams(), st.data())
def test_any_chunking_reassembles_the_stream(
    case: tuple[list[bytes | KeepAlive], bytes], data: st.DataObject
) -> None:
    expected, stream = case
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=12)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    framer = StreamFramer()
    assert feed_all(framer, chunks) == expected
    assert framer.buffered == 0
    for item in expected:
        if isinstance(item, bytes):
            assert isinstance(parse_message(item, datagram=False), Request)


@settings(max_examples=300)
@given(st.lists(st.binary(max_size=80), max_size=8))
def test_arbitrary_chunks_never_raise_anything_but_framing_error(chunks: list[bytes]) -> None:
    framer = StreamFramer(max_message_size=200)
    try:
        for chunk in chunks:
            for item in framer.feed(chunk):
                if isinstance(item, bytes):
                    assert 0 < len(item) <= 200
    except FramingError:
        return
    assert framer.buffered <= 200

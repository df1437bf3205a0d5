"""RFC 4028 session-timer negotiation (mediaserver.sip.session_timer)."""

from __future__ import annotations

import pytest

from mediaserver.sip.message import Request, Response, parse_message
from mediaserver.sip.session_timer import MIN_SE, SessionTimer, negotiate


def invite(*headers: str) -> Request:
    text = (
        "INVITE sip:echo@192.0.2.1 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 198.51.100.7;branch=z9hG4bKx\r\n"
        "From: <sip:a@b>;tag=1\r\nTo: <sip:echo@192.0.2.1>\r\nCall-ID: c\r\n"
        "CSeq: 1 INVITE\r\n" + "".join(h + "\r\n" for h in headers) + "Content-Length: 0\r\n\r\n"
    )
    message = parse_message(text.encode())
    assert isinstance(message, Request)
    return message


def test_no_session_expires_means_no_timer() -> None:
    assert negotiate(invite()) is None


@pytest.mark.parametrize(
    ("headers", "interval", "we_refresh"),
    [
        (("Session-Expires: 1800", "Supported: timer"), 1800, False),
        (("Session-Expires: 1800;refresher=uac", "Supported: timer"), 1800, False),
        (("Session-Expires: 600;refresher=uas", "Supported: timer"), 600, True),
        (("Session-Expires: 600",), 600, True),  # RFC 4028 9: no timer support, we refresh
        (("x: 900;refresher=uac", "k: timer"), 900, False),  # compact forms
        (("Session-Expires: 90", "Require: timer"), 90, False),
    ],
)
def test_who_refreshes(headers: tuple[str, ...], interval: int, we_refresh: bool) -> None:
    timer = negotiate(invite(*headers))
    assert timer == SessionTimer(interval, we_refresh)


def test_too_brief_gets_422_with_min_se() -> None:
    response = negotiate(invite("Session-Expires: 89"))
    assert isinstance(response, Response) and response.status == 422
    assert response.headers.get("Min-SE") == str(MIN_SE)


@pytest.mark.parametrize("value", ["abc", "-5", "60;=x", ""])
def test_malformed_session_expires_gets_400(value: str) -> None:
    response = negotiate(invite(f"Session-Expires: {value}"))
    assert isinstance(response, Response) and response.status == 400


def test_headers_and_times() -> None:
    timer = SessionTimer(1800, we_refresh=False)
    assert timer.headers() == [("Session-Expires", "1800;refresher=uac"), ("Require", "timer")]
    assert timer.refresh_after == 900
    assert timer.expire_after == 1800 - 32  # RFC 4028 10: minus min(32, interval / 3)
    assert SessionTimer(90, we_refresh=True).expire_after == 60
    assert SessionTimer(90, True).headers()[0] == ("Session-Expires", "90;refresher=uas")

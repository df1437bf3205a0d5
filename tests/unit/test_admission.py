"""Whether an initial INVITE becomes a call: the pure decision of calls/admission.py.

Each rule in its order (RFC 3261 8.2): the access policy's answer, the per-user
rate, draining, the dialog headers, the session timer, the body type, Accept,
Content-Encoding, the route, and the SDP offer.
"""

from __future__ import annotations

import pytest

from mediaserver.calls.admission import Admit, Challenge, Refuse, admit_invite
from mediaserver.sip.access import Admission, Decision
from mediaserver.sip.message import Request, Response, make_response, parse_message
from mediaserver.sip.session_timer import SessionTimer

SDP = (
    "v=0\r\no=- 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\n"
    "m=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)
NETWORK = Admission("network")


def invite(
    extra: str = "", body: str = "", *, user: str = "echo", contact: str | None = None
) -> Request:
    contact_line = "Contact: <sip:alice@198.51.100.7>\r\n" if contact is None else contact
    text = (
        f"INVITE sip:{user}@192.0.2.1 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bKabc\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:alice@192.0.2.1>;tag=1\r\n"
        f"To: <sip:{user}@192.0.2.1>\r\n"
        "Call-ID: c1\r\n"
        "CSeq: 1 INVITE\r\n"
        f"{contact_line}{extra}"
        f"Content-Length: {len(body.encode())}\r\n\r\n{body}"
    )
    message = parse_message(text.encode())
    assert isinstance(message, Request)
    return message


def route(called: str) -> str | None:
    return {"echo": "echo-scenario"}.get(called)


def decide(
    request: Request,
    access: Decision = NETWORK,
    *,
    retry_after: int | None = None,
    draining: bool = False,
) -> Admit | Challenge | Refuse:
    return admit_invite(
        request, access, user_retry_after=retry_after, draining=draining, route=route
    )


def test_an_admitted_invite_with_an_offer_runs_its_routed_scenario() -> None:
    decision = decide(invite("Content-Type: application/sdp\r\n", SDP))
    assert isinstance(decision, Admit)
    assert decision.scenario == "echo-scenario"
    assert decision.admission == NETWORK
    assert decision.offer is not None and decision.offer.media[0].port == 4000
    assert decision.session_timer is None


def test_an_invite_without_an_offer_is_admitted_without_one() -> None:
    decision = decide(invite())
    assert isinstance(decision, Admit) and decision.offer is None


def test_a_407_from_the_access_policy_is_a_challenge_not_a_refusal() -> None:
    request = invite()
    challenge = make_response(request, 407)
    assert decide(request, challenge) == Challenge(challenge)


@pytest.mark.parametrize(("status", "why"), [(403, "forbidden"), (400, "bad_credentials")])
def test_a_caller_refused_by_the_access_policy_gets_no_record(status: int, why: str) -> None:
    request = invite()
    refusal: Response = make_response(request, status, "Forbidden (unknown caller)")
    decision = decide(request, refusal)
    assert isinstance(decision, Refuse)
    assert (decision.status, decision.why, decision.record) == (status, why, False)
    assert decision.response is refusal and decision.reason == "Forbidden (unknown caller)"


def test_a_user_over_their_rate_gets_503_with_retry_after_and_no_record() -> None:
    decision = decide(invite(), Admission("user", "alice"), retry_after=7)
    assert decision == Refuse(503, "rate_limited", "Too many requests",
                              (("Retry-After", "7"),), record=False)  # fmt: skip


def test_a_draining_server_refuses_with_503_and_retry_after() -> None:
    decision = decide(invite(), draining=True)
    assert decision == Refuse(503, "shutting_down", "Shutting down", (("Retry-After", "60"),))


def test_the_access_policy_is_asked_before_draining() -> None:
    request = invite()
    assert isinstance(decide(request, make_response(request, 407), draining=True), Challenge)


def test_an_invite_with_two_contacts_is_a_bad_request() -> None:
    decision = decide(invite(contact="Contact: <sip:a@198.51.100.7>, <sip:b@198.51.100.7>\r\n"))
    assert isinstance(decision, Refuse)
    assert (decision.status, decision.why) == (400, "bad_request")
    assert decision.reason is not None and "Contact" in decision.reason


def test_a_session_interval_too_small_gets_422_with_min_se() -> None:
    decision = decide(invite("Session-Expires: 30\r\n"))
    assert isinstance(decision, Refuse)
    assert (decision.status, decision.why, decision.record) == (
        422,
        "session_interval_too_small",
        True,
    )
    assert decision.response is not None and decision.response.headers.get("Min-SE") == "90"


def test_a_malformed_session_expires_is_a_bad_request() -> None:
    decision = decide(invite("Session-Expires: soon\r\n"))
    assert isinstance(decision, Refuse) and (decision.status, decision.why) == (400, "bad_request")


def test_an_acceptable_session_timer_is_negotiated() -> None:
    decision = decide(invite("Session-Expires: 1800;refresher=uac\r\nSupported: timer\r\n"))
    assert isinstance(decision, Admit)
    assert decision.session_timer == SessionTimer(1800, False)


def test_a_body_that_is_not_sdp_gets_415_naming_what_we_accept() -> None:
    decision = decide(invite("Content-Type: text/plain\r\n", "hello"))
    assert decision == Refuse(415, "unsupported_media", extra=(("Accept", "application/sdp"),))


@pytest.mark.parametrize("accept", ["text/plain", ""])
def test_a_caller_that_cannot_take_sdp_gets_406(accept: str) -> None:
    decision = decide(invite(f"Accept: {accept}\r\n"))
    assert isinstance(decision, Refuse) and (decision.status, decision.why) == (
        406,
        "unsupported_media",
    )


@pytest.mark.parametrize(
    "accept", ["application/sdp", "application/*;q=0.5", "*/*", "text/html, application/sdp"]
)
def test_an_accept_that_allows_sdp_is_admitted(accept: str) -> None:
    assert isinstance(decide(invite(f"Accept: {accept}\r\n")), Admit)


def test_a_compressed_body_gets_415_naming_identity() -> None:
    extra = "Content-Type: application/sdp\r\nContent-Encoding: gzip\r\n"
    decision = decide(invite(extra, SDP))
    assert decision == Refuse(415, "unsupported_media", extra=(("Accept-Encoding", "identity"),))


def test_a_number_with_no_route_gets_404_naming_it() -> None:
    decision = decide(invite(user="nobody"))
    assert decision == Refuse(404, "no_route", "No route for nobody")


def test_a_bad_offer_gets_400_and_names_the_scenario_it_was_for() -> None:
    decision = decide(invite("Content-Type: application/sdp\r\n", "v=0\r\nbogus\r\n"))
    assert isinstance(decision, Refuse)
    assert (decision.status, decision.why, decision.scenario) == (
        400,
        "bad_request",
        "echo-scenario",
    )
    assert decision.reason is not None and decision.reason.startswith("Bad SDP: ")

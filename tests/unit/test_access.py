"""Who may call and register: the pure admission rules of mediaserver.sip.access."""

from __future__ import annotations

import ipaddress

from mediaserver.sip.access import AccessPolicy, Admission
from mediaserver.sip.digest import answer_challenge, challenges_from
from mediaserver.sip.message import Request, Response, parse_message

INVITE = (
    "INVITE sip:echo@192.0.2.1 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bKabc\r\n"
    "From: <sip:alice@192.0.2.1>;tag=1\r\n"
    "To: <sip:echo@192.0.2.1>\r\n"
    "Call-ID: c1\r\n"
    "CSeq: {cseq} {method}\r\n"
    "{extra}"
    "Content-Length: 0\r\n\r\n"
)


def request(method: str = "INVITE", cseq: int = 1, extra: str = "") -> Request:
    text = INVITE.format(cseq=cseq, method=method, extra=extra).replace(
        "INVITE sip", f"{method} sip"
    )
    message = parse_message(text.encode())
    assert isinstance(message, Request)
    return message


def policy(**kwargs: object) -> AccessPolicy:
    return AccessPolicy(users={"alice": "wonderland"}, **kwargs)  # type: ignore[arg-type]


def answered(policy: AccessPolicy, challenge: Response, password: str, method: str = "INVITE",
             proxy: bool = True) -> Request:  # fmt: skip
    [offer] = challenges_from(challenge)
    credentials = answer_challenge(offer, method=method, uri="sip:echo@192.0.2.1",
                                   username="alice", password=password)  # fmt: skip
    header = "Proxy-Authorization" if proxy else "Authorization"
    return request(method, cseq=2, extra=f"{header}: {credentials}\r\n")


def test_trusted_networks_are_admitted_without_credentials() -> None:
    access = policy(trusted_networks=[ipaddress.ip_network("198.51.100.0/24")])
    assert access.admit_call(request(), "198.51.100.7", 0.0) == Admission("network")
    assert isinstance(access.admit_call(request(), "203.0.113.9", 0.0), Response)


def test_trunk_addresses_are_admitted_as_the_trunk() -> None:
    access = policy()
    access.trunk_addresses["203.0.113.5"] = "carrier"
    assert access.admit_call(request(), "203.0.113.5", 0.0) == Admission("trunk", "carrier")


def test_without_users_an_unknown_caller_gets_403() -> None:
    access = AccessPolicy()
    decision = access.admit_call(request(), "203.0.113.9", 0.0)
    assert isinstance(decision, Response) and decision.status == 403


def test_users_are_challenged_with_407_then_admitted() -> None:
    access = policy()
    challenge = access.admit_call(request(), "203.0.113.9", 0.0)
    assert isinstance(challenge, Response) and challenge.status == 407
    value = challenge.headers.get("Proxy-Authenticate") or ""
    assert 'realm="mediaserver"' in value and "algorithm=MD5" in value
    decision = access.admit_call(answered(access, challenge, "wonderland"), "203.0.113.9", 1.0)
    assert decision == Admission("user", "alice")


def test_wrong_password_is_refused_not_rechallenged() -> None:
    access = policy()
    challenge = access.admit_call(request(), "203.0.113.9", 0.0)
    assert isinstance(challenge, Response)
    decision = access.admit_call(answered(access, challenge, "guess"), "203.0.113.9", 1.0)
    assert isinstance(decision, Response) and decision.status == 403


def test_register_is_challenged_with_401() -> None:
    access = policy()
    challenge = access.admit_register(request("REGISTER"), 0.0)
    assert isinstance(challenge, Response) and challenge.status == 401
    assert challenge.headers.get("WWW-Authenticate")
    good = answered(access, challenge, "wonderland", method="REGISTER", proxy=False)
    assert access.admit_register(good, 1.0) == Admission("user", "alice")


def test_sha256_can_be_offered_first() -> None:
    access = policy(algorithms=("SHA-256", "MD5"))
    challenge = access.admit_call(request(), "203.0.113.9", 0.0)
    assert isinstance(challenge, Response)
    offers = challenge.headers.get_all("Proxy-Authenticate")
    assert "SHA-256" in offers[0] and "MD5" in offers[1]

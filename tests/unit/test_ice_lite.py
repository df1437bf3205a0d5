"""ICE-lite connectivity checks (mediaserver/media/ice.py), with RFC 5769's
sample request as the browser's check."""

from __future__ import annotations

from aioice import stun

from mediaserver.media.ice import IceCredentials, IceLite

# RFC 5769 2.1: USERNAME "evtj:h6vY", password "VOkJxbRl1RmTxUk/WvJxBt", with
# SOFTWARE, PRIORITY, ICE-CONTROLLED, MESSAGE-INTEGRITY and FINGERPRINT.
SAMPLE_REQUEST = bytes.fromhex(
    "00010058" "2112a442" "b7e7a701bc34d686fa87dfae"
    "80220010" "5354554e2074657374" "20636c69656e74"
    "00240004" "6e0001ff"
    "80290008" "932ff9b151263b36"
    "00060009" "6576746a3a68367659" "202020"
    "00080014" "9aeaa70cbfd8cb56781ef2b5b2d3f249c1b571a2"
    "80280004" "e57a3bcf"
)  # fmt: skip
OURS = IceCredentials("evtj", "VOkJxbRl1RmTxUk/WvJxBt")
BROWSER = ("192.0.2.1", 32853)


def check(use_candidate: bool = False, ufrag: str = "evtj:h6vY", pwd: str = OURS.pwd) -> bytes:
    """A binding request as a controlling browser sends it (RFC 8445 7.2.2)."""
    request = stun.Message(stun.Method.BINDING, stun.Class.REQUEST)
    request.attributes["USERNAME"] = ufrag
    request.attributes["PRIORITY"] = 1853824767
    request.attributes["ICE-CONTROLLING"] = 5
    if use_candidate:
        request.attributes["USE-CANDIDATE"] = None
    request.add_message_integrity(pwd.encode())
    return bytes(request)


def test_the_rfc_5769_sample_check_is_answered_with_its_source_signed() -> None:
    ice = IceLite(OURS, remote_ufrag="h6vY")
    answer = ice.answer(SAMPLE_REQUEST, BROWSER)
    assert answer.response is not None and answer.selects
    response = stun.parse_message(answer.response)  # checks the FINGERPRINT
    assert (response.message_method, response.message_class) == (
        stun.Method.BINDING,
        stun.Class.RESPONSE,
    )
    assert response.transaction_id == bytes.fromhex("b7e7a701bc34d686fa87dfae")
    assert response.attributes["XOR-MAPPED-ADDRESS"] == BROWSER
    assert response.check_message_integrity(OURS.pwd.encode())
    assert "FINGERPRINT" in response.attributes
    assert (ice.checks, ice.refused) == (1, 0)


def test_checks_that_are_not_ours_are_dropped() -> None:
    ice = IceLite(OURS, remote_ufrag="h6vY")
    tampered = bytearray(SAMPLE_REQUEST)
    tampered[30] ^= 1  # inside SOFTWARE: the integrity no longer matches
    refused = [
        bytes(tampered),
        check(pwd="another password 123456"),  # signed with someone else's password
        check(ufrag="xxxx:h6vY"),  # for another agent
        check(ufrag="evtj:zzzz"),  # from another peer than the SDP's
        SAMPLE_REQUEST[:-8],  # no FINGERPRINT: the length no longer matches either
        b"\x00\x01\x00\x00" + b"\x21\x12\xa4\x42" + bytes(12),  # no USERNAME at all
        b"garbage",
    ]
    for data in refused:
        assert ice.answer(data, BROWSER).response is None
    assert (ice.checks, ice.refused) == (0, len(refused))


def test_a_nominated_address_keeps_the_media_until_another_is_nominated() -> None:
    ice = IceLite(OURS)
    first, second, third = ("192.0.2.1", 5000), ("198.51.100.7", 6000), ("203.0.113.9", 7000)
    assert ice.answer(check(), first).selects  # nothing nominated: the latest check's
    assert ice.answer(check(use_candidate=True), second).selects
    assert not ice.answer(check(), third).selects  # answered, but the media stays
    assert ice.answer(check(use_candidate=True), third).selects
    assert ice.nominated == third


def test_credentials_are_long_enough_and_of_ice_characters() -> None:
    made = {IceCredentials.new() for _ in range(20)}
    assert len(made) == 20
    for credentials in made:
        assert len(credentials.ufrag) >= 4 and len(credentials.pwd) >= 22
        allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/")
        assert set(credentials.ufrag + credentials.pwd) <= allowed

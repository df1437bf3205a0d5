"""The registrar: REGISTER processing, bindings over time, limits (RFC 3261 10.3, 19.1.4)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mediaserver.sip.message import Request, parse_message
from mediaserver.sip.registrar import Binding, RegisterOutcome, Registrar, same_uri
from mediaserver.sip.uri import NameAddress, parse_uri

Source = tuple[str, int]
PHONE: Source = ("192.0.2.10", 5060)


def register(
    *contacts: str,
    user: str = "alice",
    call_id: str = "reg-1@192.0.2.10",
    cseq: int = 1,
    expires: str | None = None,
    transport: str = "UDP",
    extra: tuple[tuple[str, str], ...] = (),
    to: str | None = None,
) -> Request:
    lines = [
        "REGISTER sip:127.0.0.1 SIP/2.0",
        f"Via: SIP/2.0/{transport} 192.0.2.10:5060;branch=z9hG4bK{cseq}x",
        "Max-Forwards: 70",
        f"From: <sip:{user}@127.0.0.1>;tag=f1",
        f"To: {to or f'<sip:{user}@127.0.0.1>'}",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} REGISTER",
        "User-Agent: baresip v3.10.1",
    ]
    lines += [f"Contact: {c}" for c in contacts]
    if expires is not None:
        lines.append(f"Expires: {expires}")
    lines += [f"{n}: {v}" for n, v in extra]
    request = parse_message(("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode())
    assert isinstance(request, Request)
    return request


def contacts_of(outcome: RegisterOutcome[Source]) -> list[str]:
    return [v for n, v in outcome.headers if n == "Contact"]


def expires_of(value: str) -> int:
    expires = NameAddress.parse(value).params["expires"]
    assert expires is not None
    return int(expires)


def registrar(**kwargs: int) -> Registrar[Source]:
    return Registrar[Source](**kwargs)


ALICE_PHONE = "<sip:alice@192.0.2.10:5060>"
ALICE_LAPTOP = "<sip:alice@198.51.100.7:5062;transport=tcp>"


# ---------------------------------------------------------------------------
# Adding, refreshing and removing


def test_first_register_adds_a_binding() -> None:
    reg = registrar()
    outcome = reg.handle_register(register(ALICE_PHONE), "alice", PHONE, 100.0)
    assert (outcome.status, outcome.reason, outcome.ok) == (200, "OK", True)
    assert contacts_of(outcome) == ["<sip:alice@192.0.2.10:5060>;expires=3600"]
    (binding,) = reg.lookup("alice", 100.0)
    assert binding.contact == "sip:alice@192.0.2.10:5060"
    assert binding.user == "alice"
    assert binding.source == PHONE
    assert binding.transport == "udp"
    assert (binding.call_id, binding.cseq) == ("reg-1@192.0.2.10", 1)
    assert binding.expires_at == 3700.0 and binding.refreshed_at == 100.0
    assert binding.user_agent == "baresip v3.10.1"
    assert binding.q == 1.0
    assert outcome.bindings == [binding]
    assert len(reg) == 1 and reg.users() == ["alice"]


def test_outcome_builds_the_response() -> None:
    reg = registrar()
    request = register(ALICE_PHONE, expires="600")
    response = reg.handle_register(request, "alice", PHONE, 0.0).response(request, to_tag="t9")
    assert response.status == 200
    assert response.headers.get_all("Contact") == ["<sip:alice@192.0.2.10:5060>;expires=600"]
    assert response.to.tag == "t9"
    assert response.call_id == request.call_id


def test_refresh_extends_the_binding() -> None:
    reg = registrar()
    reg.handle_register(register(ALICE_PHONE, expires="600"), "alice", PHONE, 0.0)
    later: Source = ("192.0.2.10", 40000)  # the NAT moved the phone's mapping
    outcome = reg.handle_register(
        register(ALICE_PHONE, expires="600", cseq=2), "alice", later, 500.0
    )
    assert contacts_of(outcome) == ["<sip:alice@192.0.2.10:5060>;expires=600"]
    (binding,) = reg.lookup("alice", 1000.0)
    assert (binding.expires_at, binding.cseq, binding.source) == (1100.0, 2, later)
    assert len(reg) == 1


def test_contact_expires_zero_removes_that_binding_only() -> None:
    reg = registrar()
    reg.handle_register(register(ALICE_PHONE, ALICE_LAPTOP), "alice", PHONE, 0.0)
    assert len(reg.lookup("alice", 1.0)) == 2
    outcome = reg.handle_register(register(f"{ALICE_PHONE};expires=0", cseq=2), "alice", PHONE, 1.0)
    assert contacts_of(outcome) == ["<sip:alice@198.51.100.7:5062;transport=tcp>;expires=3599"]
    assert [b.contact for b in reg.lookup("alice", 1.0)] == [
        "sip:alice@198.51.100.7:5062;transport=tcp"
    ]


def test_expires_header_zero_removes() -> None:
    reg = registrar()
    reg.handle_register(register(ALICE_PHONE), "alice", PHONE, 0.0)
    outcome = reg.handle_register(register(ALICE_PHONE, cseq=2, expires="0"), "alice", PHONE, 1)
    assert outcome.ok and contacts_of(outcome) == [] and outcome.bindings == []
    assert reg.lookup("alice", 1.0) == [] and len(reg) == 0 and reg.users() == []


def test_removing_an_unknown_contact_is_fine() -> None:
    reg = registrar()
    outcome = reg.handle_register(register(ALICE_PHONE, expires="0"), "alice", PHONE, 0.0)
    assert outcome.ok and outcome.bindings == []


def test_query_without_contact_lists_bindings_and_changes_nothing() -> None:
    reg = registrar()
    reg.handle_register(register(ALICE_PHONE, expires="100"), "alice", PHONE, 0.0)
    outcome = reg.handle_register(register(cseq=2), "alice", PHONE, 40.0)
    assert contacts_of(outcome) == ["<sip:alice@192.0.2.10:5060>;expires=60"]
    assert reg.lookup("alice", 40.0)[0].cseq == 1


# ---------------------------------------------------------------------------
# Contact: *


def test_star_with_expires_zero_removes_everything() -> None:
    reg = registrar()
    reg.handle_register(register(ALICE_PHONE, ALICE_LAPTOP), "alice", PHONE, 0.0)
    reg.handle_register(register("<sip:bob@192.0.2.20>", user="bob"), "bob", PHONE, 0.0)
    outcome = reg.handle_register(register("*", cseq=2, expires="0"), "alice", PHONE, 1.0)
    assert outcome.ok and contacts_of(outcome) == []
    assert reg.lookup("alice", 1.0) == []
    assert len(reg.lookup("bob", 1.0)) == 1  # only the requester's bindings


def test_star_from_another_call_id_removes_regardless_of_cseq() -> None:
    reg = registrar()
    reg.handle_register(register(ALICE_PHONE, cseq=50), "alice", PHONE, 0.0)
    star = register("*", call_id="other@x", cseq=1, expires="0")
    assert reg.handle_register(star, "alice", PHONE, 1.0).ok
    assert reg.lookup("alice", 1.0) == []


@pytest.mark.parametrize(
    ("contacts", "expires"),
    [
        (("*",), None),
        (("*",), "3600"),
        (("*", ALICE_PHONE), "0"),
        ((ALICE_PHONE, "*"), "0"),
    ],
)
def test_star_needs_expires_zero_and_no_other_contact(
    contacts: tuple[str, ...], expires: str | None
) -> None:
    reg = registrar()
    reg.handle_register(register(ALICE_LAPTOP), "alice", PHONE, 0.0)
    outcome = reg.handle_register(register(*contacts, cseq=2, expires=expires), "alice", PHONE, 1.0)
    assert outcome.status == 400
    assert "*" in outcome.reason
    assert len(reg.lookup("alice", 1.0)) == 1  # untouched


def test_star_out_of_order_fails_and_keeps_bindings() -> None:
    reg = registrar()
    reg.handle_register(register(ALICE_PHONE, cseq=5), "alice", PHONE, 0.0)
    outcome = reg.handle_register(register("*", cseq=5, expires="0"), "alice", PHONE, 1.0)
    assert outcome.status == 500
    assert len(reg.lookup("alice", 1.0)) == 1
    assert contacts_of(outcome) == []  # a failure lists nothing
    assert len(outcome.bindings) == 1


# ---------------------------------------------------------------------------
# Expiry


def test_per_contact_expires_beats_the_header_which_beats_the_default() -> None:
    reg = registrar(default_expires=1800)
    outcome = reg.handle_register(
        register(f"{ALICE_PHONE};expires=120", ALICE_LAPTOP, expires="300"), "alice", PHONE, 0
    )
    assert sorted(expires_of(v) for v in contacts_of(outcome)) == [120, 300]
    outcome = reg.handle_register(register("<sip:bob@x>", user="bob"), "bob", PHONE, 0)
    assert [expires_of(v) for v in contacts_of(outcome)] == [1800]


def test_long_expiry_is_shortened_to_the_maximum() -> None:
    reg = registrar(max_expires=3600)
    outcome = reg.handle_register(register(ALICE_PHONE, expires="4294967295"), "alice", PHONE, 0)
    assert [expires_of(v) for v in contacts_of(outcome)] == [3600]
    huge = register(ALICE_PHONE, cseq=2, expires="0000099999999999999999999999")
    assert [expires_of(v) for v in contacts_of(reg.handle_register(huge, "alice", PHONE, 0))] == [
        3600
    ]


@pytest.mark.parametrize(
    ("contact", "expires"),
    [
        (f"{ALICE_PHONE};expires=soon", "60"),
        (f"{ALICE_PHONE};expires=-1", None),
        (f"{ALICE_PHONE};expires=", None),
        (ALICE_PHONE, "Thu, 01 Dec 1994 16:00:00 GMT"),  # RFC 2543 style
        (ALICE_PHONE, "١٢٠"),  # not ASCII digits
    ],
)
def test_malformed_expiry_counts_as_3600(contact: str, expires: str | None) -> None:
    """RFC 3261 10.2.1.1: malformed values SHOULD be treated as 3600."""
    reg = registrar(max_expires=7200)
    outcome = reg.handle_register(register(contact, expires=expires), "alice", PHONE, 0.0)
    assert [expires_of(v) for v in contacts_of(outcome)] == [3600]


def test_star_with_malformed_expires_is_400() -> None:
    outcome = registrar().handle_register(register("*", expires="never"), "alice", PHONE, 0)
    assert outcome.status == 400


@pytest.mark.parametrize(
    ("header", "value", "named"),
    [("Contact", '"unterminated <sip:alice@192.0.2.10>', "Bad Contact"),
     ("Require", '"foo', "Bad Require header")],
)  # fmt: skip
def test_unterminated_quote_in_a_needed_header_is_400(header: str, value: str, named: str) -> None:
    request = register(ALICE_PHONE, extra=((header, value),))
    outcome = registrar().handle_register(request, "alice", PHONE, 0)
    assert (outcome.status, outcome.reason[: len(named)]) == (400, named)


def test_expires_zero_written_with_leading_zeros_removes() -> None:
    reg = registrar()
    reg.handle_register(register(ALICE_PHONE), "alice", PHONE, 0.0)
    reg.handle_register(register(f"{ALICE_PHONE};expires=000", cseq=2), "alice", PHONE, 1.0)
    assert reg.lookup("alice", 1.0) == []


def test_expires_zero_for_an_unknown_contact_takes_no_room() -> None:
    reg = registrar(max_bindings_per_user=2)
    reg.handle_register(register("<sip:alice@a>", "<sip:alice@b>"), "alice", PHONE, 0.0)
    outcome = reg.handle_register(register("<sip:alice@c>;expires=0", cseq=2), "alice", PHONE, 1)
    assert outcome.ok
    assert {b.contact for b in reg.lookup("alice", 1.0)} == {"sip:alice@a", "sip:alice@b"}


@pytest.mark.parametrize(
    ("contacts", "expires"),
    [
        ((f"{ALICE_PHONE};expires=59",), None),
        ((ALICE_PHONE,), "1"),
        ((ALICE_LAPTOP, f"{ALICE_PHONE};expires=30"), "3600"),
    ],
)
def test_too_brief_is_423_with_min_expires(contacts: tuple[str, ...], expires: str | None) -> None:
    reg = registrar(min_expires=60)
    outcome = reg.handle_register(register(*contacts, expires=expires), "alice", PHONE, 0.0)
    assert (outcome.status, outcome.reason) == (423, "Interval Too Brief")
    assert outcome.headers == [("Min-Expires", "60")]
    assert reg.lookup("alice", 0.0) == []  # nothing half-done


def test_minimum_itself_is_accepted() -> None:
    reg = registrar(min_expires=60)
    outcome = reg.handle_register(register(ALICE_PHONE, expires="60"), "alice", PHONE, 0.0)
    assert outcome.ok


def test_bindings_expire_over_time() -> None:
    reg = registrar()
    reg.handle_register(register(f"{ALICE_PHONE};expires=100", ALICE_LAPTOP), "alice", PHONE, 0)
    reg.handle_register(register("<sip:bob@x>;expires=200", user="bob"), "bob", PHONE, 0)
    assert reg.next_expiry() == 100.0
    outcome = reg.handle_register(register(cseq=2), "alice", PHONE, 30.5)
    assert sorted(expires_of(v) for v in contacts_of(outcome)) == [70, 3570]
    assert len(reg.lookup("alice", 99.9)) == 2
    assert len(reg.lookup("alice", 100.0)) == 1  # expired at exactly its time
    assert len(reg) == 2  # lookup dropped the expired one
    assert reg.next_expiry() == 200.0
    removed = reg.expire(200.0)
    assert [b.user for b in removed] == ["bob"]
    assert reg.users() == ["alice"]
    assert reg.next_expiry() == 3600.0
    assert [b.user for b in reg.expire(5000.0)] == ["alice"]
    assert reg.next_expiry() is None and len(reg) == 0


def test_binding_remaining_rounds_up() -> None:
    reg = registrar()
    reg.handle_register(register(ALICE_PHONE, expires="60"), "alice", PHONE, 0.0)
    (b,) = reg.lookup("alice", 0.0)
    assert (b.remaining(0.0), b.remaining(59.2), b.remaining(60.0), b.remaining(61)) == (
        60,
        1,
        0,
        0,
    )
    assert b.expired(60.0) and not b.expired(59.99)


# ---------------------------------------------------------------------------
# Call-ID and CSeq ordering (RFC 3261 10.3 step 7)


@pytest.mark.parametrize("cseq", [1, 4, 5])
def test_same_call_id_with_cseq_not_higher_fails(cseq: int) -> None:
    reg = registrar()
    reg.handle_register(register(ALICE_PHONE, cseq=5, expires="600"), "alice", PHONE, 0.0)
    outcome = reg.handle_register(
        register(ALICE_PHONE, cseq=cseq, expires="0"), "alice", PHONE, 1.0
    )
    assert outcome.status == 500
    assert "order" in outcome.reason
    (b,) = reg.lookup("alice", 1.0)
    assert (b.cseq, b.expires_at) == (5, 600.0)


def test_same_call_id_with_higher_cseq_updates() -> None:
    reg = registrar()
    reg.handle_register(register(ALICE_PHONE, cseq=5), "alice", PHONE, 0.0)
    assert reg.handle_register(register(ALICE_PHONE, cseq=6), "alice", PHONE, 1.0).ok


def test_another_call_id_updates_whatever_its_cseq() -> None:
    reg = registrar()
    reg.handle_register(register(ALICE_PHONE, cseq=50), "alice", PHONE, 0.0)
    rebooted = register(ALICE_PHONE, call_id="new@192.0.2.10", cseq=1, expires="300")
    assert reg.handle_register(rebooted, "alice", PHONE, 1.0).ok
    (b,) = reg.lookup("alice", 1.0)
    assert (b.call_id, b.cseq, b.expires_at) == ("new@192.0.2.10", 1, 301.0)


def test_failed_request_commits_nothing() -> None:
    reg = registrar()
    reg.handle_register(register(ALICE_LAPTOP, cseq=9), "alice", PHONE, 0.0)
    # the new contact would be fine, the second is out of order: all or nothing
    outcome = reg.handle_register(register(ALICE_PHONE, ALICE_LAPTOP, cseq=9), "alice", PHONE, 1)
    assert outcome.status == 500
    assert [b.contact for b in reg.lookup("alice", 1.0)] == [
        "sip:alice@198.51.100.7:5062;transport=tcp"
    ]


def test_contacts_are_matched_by_uri_equality() -> None:
    reg = registrar()
    reg.handle_register(register("<sip:alice@Phone.Example:5060>"), "alice", PHONE, 0.0)
    outcome = reg.handle_register(
        register('"Alice" <sip:%61lice@phone.example:5060>;expires=0', cseq=2),
        "alice",
        PHONE,
        1.0,
    )
    assert outcome.ok and reg.lookup("alice", 1.0) == []


# ---------------------------------------------------------------------------
# q values and lookup order


def test_lookup_orders_by_q_then_most_recent() -> None:
    reg = registrar()
    reg.handle_register(register("<sip:alice@a>;q=0.1"), "alice", PHONE, 0.0)
    reg.handle_register(register("<sip:alice@b>;q=0.9", cseq=2), "alice", PHONE, 1.0)
    reg.handle_register(register("<sip:alice@c>", cseq=3), "alice", PHONE, 2.0)  # no q: 1.0
    reg.handle_register(register("<sip:alice@d>;q=0.9", cseq=4), "alice", PHONE, 3.0)
    reg.handle_register(register("<sip:alice@e>;q=1.000", cseq=5), "alice", PHONE, 4.0)
    order = [b.contact for b in reg.lookup("alice", 5.0)]
    assert order == ["sip:alice@e", "sip:alice@c", "sip:alice@d", "sip:alice@b", "sip:alice@a"]
    assert [b.q for b in reg.lookup("alice", 5.0)] == [1.0, 1.0, 0.9, 0.9, 0.1]
    # refreshing b makes it the most recent among q=0.9
    reg.handle_register(register("<sip:alice@b>;q=0.9", cseq=6), "alice", PHONE, 6.0)
    assert [b.contact for b in reg.lookup("alice", 6.0)][2:4] == ["sip:alice@b", "sip:alice@d"]


@pytest.mark.parametrize("q", ["1.5", "-1", "0.1234", "abc", "2", ".5", "1.1"])
def test_bad_q_is_400(q: str) -> None:
    outcome = registrar().handle_register(register(f"{ALICE_PHONE};q={q}"), "alice", PHONE, 0)
    assert outcome.status == 400 and "q" in outcome.reason


@pytest.mark.parametrize("q", ["0", "0.", "0.5", "1", "1.0", "1.000", "0.999"])
def test_good_q_values(q: str) -> None:
    outcome = registrar().handle_register(register(f"{ALICE_PHONE};q={q}"), "alice", PHONE, 0)
    assert outcome.ok and outcome.bindings[0].q == float(q)


# ---------------------------------------------------------------------------
# What the 200 lists


def test_response_lists_every_binding_with_its_parameters() -> None:
    reg = registrar()
    instance = '"<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>"'
    reg.handle_register(register(ALICE_LAPTOP, expires="600"), "alice", PHONE, 0.0)
    outcome = reg.handle_register(
        register(f"<sip:alice@192.0.2.10:5060;ob>;+sip.instance={instance};reg-id=1;q=0.5",
                 call_id="other", expires="3600"),
        "alice",
        PHONE,
        100.0,
    )  # fmt: skip
    assert contacts_of(outcome) == [
        "<sip:alice@198.51.100.7:5062;transport=tcp>;expires=500",
        f"<sip:alice@192.0.2.10:5060;ob>;+sip.instance={instance};reg-id=1;q=0.5;expires=3600",
    ]
    binding = next(b for b in outcome.bindings if b.reg_id is not None)
    assert binding.instance_id == "<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>"
    assert binding.reg_id == 1
    assert binding.params["q"] == "0.5"
    assert "expires" not in binding.params


def test_contacts_in_one_header_line() -> None:
    reg = registrar()
    outcome = reg.handle_register(
        register(f"{ALICE_PHONE};expires=100, {ALICE_LAPTOP};expires=200"), "alice", PHONE, 0
    )
    assert sorted(expires_of(v) for v in contacts_of(outcome)) == [100, 200]


def test_transport_comes_from_the_via() -> None:
    reg = registrar()
    reg.handle_register(register(ALICE_LAPTOP, transport="TCP"), "alice", PHONE, 0.0)
    assert reg.lookup("alice", 0.0)[0].transport == "tcp"


# ---------------------------------------------------------------------------
# Refusals


def test_registering_someone_else_is_forbidden() -> None:
    reg = registrar()
    outcome = reg.handle_register(register(ALICE_PHONE, user="bob"), "alice", PHONE, 0.0)
    assert outcome.status == 403
    assert reg.lookup("alice", 0.0) == [] and reg.lookup("bob", 0.0) == []


def test_escaped_to_user_matches() -> None:
    reg = registrar()
    request = register(ALICE_PHONE, to="<sip:%61lice@127.0.0.1>")
    assert reg.handle_register(request, "alice", PHONE, 0.0).ok


@pytest.mark.parametrize("to", ["<tel:+33199001234>", "<sip:127.0.0.1>"])
def test_to_without_a_sip_user_is_404(to: str) -> None:
    outcome = registrar().handle_register(register(ALICE_PHONE, to=to), "alice", PHONE, 0.0)
    assert outcome.status == 404


@pytest.mark.parametrize(
    ("contact", "expires", "reason"),
    [
        ("<sip:alice@x", None, "Contact"),
        ("<sip:alice@x>;reg-id=one", None, "reg-id"),
    ],
)
def test_malformed_register_is_400(contact: str, expires: str | None, reason: str) -> None:
    outcome = registrar().handle_register(register(contact, expires=expires), "alice", PHONE, 0.0)
    assert outcome.status == 400
    assert reason in outcome.reason


def test_duplicate_contact_in_one_request_is_400() -> None:
    outcome = registrar().handle_register(
        register("<sip:alice@x>", "<sip:alice@X>;expires=60"), "alice", PHONE, 0.0
    )
    assert (outcome.status, outcome.reason) == (400, "Duplicate Contact")


def test_required_extension_is_420() -> None:
    request = register(ALICE_PHONE, extra=(("Require", "gruu, path"),))
    outcome = registrar().handle_register(request, "alice", PHONE, 0.0)
    assert (outcome.status, outcome.headers) == (420, [("Unsupported", "gruu, path")])


def test_not_a_register() -> None:
    request = register(ALICE_PHONE)
    request.method = "INVITE"
    with pytest.raises(ValueError, match="REGISTER"):
        registrar().handle_register(request, "alice", PHONE, 0.0)


def test_bad_cseq_is_400() -> None:
    request = register(ALICE_PHONE)
    request.headers.set("CSeq", "x REGISTER")
    assert registrar().handle_register(request, "alice", PHONE, 0.0).status == 400


# ---------------------------------------------------------------------------
# Limits


def test_per_user_limit_drops_the_stalest_binding() -> None:
    reg = registrar(max_bindings_per_user=3)
    for i in range(5):
        reg.handle_register(
            register(f"<sip:alice@192.0.2.{i}>", call_id=f"c{i}"), "alice", PHONE, float(i)
        )
    assert [b.contact for b in reg.lookup("alice", 5.0)] == [
        "sip:alice@192.0.2.4",
        "sip:alice@192.0.2.3",
        "sip:alice@192.0.2.2",
    ]
    assert len(reg) == 3


def test_too_many_contacts_in_one_request_is_403() -> None:
    reg = registrar(max_bindings_per_user=2)
    outcome = reg.handle_register(
        register("<sip:alice@a>", "<sip:alice@b>", "<sip:alice@c>"), "alice", PHONE, 0.0
    )
    assert outcome.status == 403 and reg.lookup("alice", 0.0) == []


def test_total_limit_refuses_new_bindings_with_503() -> None:
    reg = registrar(max_bindings_per_user=2, max_bindings=3)
    reg.handle_register(register("<sip:alice@a>", "<sip:alice@b>"), "alice", PHONE, 0.0)
    assert reg.handle_register(register("<sip:bob@a>", user="bob"), "bob", PHONE, 0.0).ok
    full = reg.handle_register(register("<sip:carol@a>", user="carol"), "carol", PHONE, 0.0)
    assert full.status == 503
    assert reg.lookup("carol", 0.0) == [] and len(reg) == 3
    # refreshing or replacing within the same count still works
    refresh = register("<sip:alice@a>", "<sip:alice@b>", cseq=2)
    assert reg.handle_register(refresh, "alice", PHONE, 1.0).ok
    # and room comes back as bindings expire
    assert reg.handle_register(register("<sip:carol@a>", user="carol"), "carol", PHONE, 5000).ok


def test_remove_user() -> None:
    reg = registrar()
    reg.handle_register(register(ALICE_PHONE, ALICE_LAPTOP), "alice", PHONE, 0.0)
    reg.remove_user("alice")
    reg.remove_user("nobody")
    assert len(reg) == 0 and reg.lookup("alice", 0.0) == [] and list(reg) == []


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_expires": 0},
        {"min_expires": 100, "default_expires": 50, "max_expires": 3600},
        {"default_expires": 7200, "max_expires": 3600},
        {"max_bindings_per_user": 0},
        {"max_bindings_per_user": 10, "max_bindings": 5},
    ],
)
def test_constructor_checks(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        Registrar[Source](**kwargs)


# ---------------------------------------------------------------------------
# URI comparison (RFC 3261 19.1.4, its examples)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp"),
        ("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"),
        ("sip:carol@chicago.com", "sip:carol@chicago.com;security=on"),
        ("sip:carol@chicago.com;newparam=5", "sip:carol@chicago.com;security=on"),
        ("sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
         "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com"),
        ("sip:alice@atlanta.com?subject=project%20x&priority=urgent",
         "sip:alice@atlanta.com?priority=urgent&subject=project%20x"),
        ("tel:+1-212-555-0101", "TEL:+1-212-555-0101"),
    ],
)  # fmt: skip
def test_equivalent_uris(a: str, b: str) -> None:
    assert same_uri(parse_uri(a), parse_uri(b))
    assert same_uri(parse_uri(b), parse_uri(a))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP"),
        ("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"),
        ("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"),
        ("sip:bob@biloxi.com", "sip:bob@biloxi.com:6000;transport=tcp"),
        ("sip:carol@chicago.com", "sip:carol@chicago.com?Subject=next%20meeting"),
        ("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"),
        ("sip:a@x;maddr=1.2.3.4", "sip:a@x"),
        ("sip:a@x;foo=1", "sip:a@x;foo=2"),
        ("sip:a:pw@x", "sip:a@x"),
        ("sips:a@x", "sip:a@x"),
        ("sip:a@x", "tel:+1"),
    ],
)
def test_different_uris(a: str, b: str) -> None:
    assert not same_uri(parse_uri(a), parse_uri(b))
    assert not same_uri(parse_uri(b), parse_uri(a))


# ---------------------------------------------------------------------------
# A model check: random REGISTER sequences against a plain dictionary model


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c"]),  # contact host
            st.sampled_from([0, 60, 600, 3600]),  # expires
            st.integers(0, 700),  # seconds since the previous request
            st.booleans(),  # new Call-ID
            st.integers(-1, 2),  # CSeq step: retransmitted or reordered requests too
        ),
        max_size=25,
    )
)
@settings(max_examples=150)
def test_registrar_matches_a_simple_model(steps: list[tuple[str, int, int, bool, int]]) -> None:
    reg = registrar()
    model: dict[str, tuple[float, str, int]] = {}  # host -> (expires_at, call_id, cseq)
    now = 0.0
    cseq = 10
    call = 0
    for host, expires, gap, new_call, step in steps:
        now += gap
        cseq = max(1, cseq + step)
        if new_call:
            call += 1
        call_id = f"call-{call}"
        request = register(f"<sip:alice@{host}>;expires={expires}", call_id=call_id, cseq=cseq)
        outcome = reg.handle_register(request, "alice", PHONE, now)
        model = {h: v for h, v in model.items() if v[0] > now}
        held = model.get(host)
        if held is not None and held[1] == call_id and cseq <= held[2]:
            assert outcome.status == 500
        else:
            assert outcome.ok
            if expires == 0:
                model.pop(host, None)
            else:
                model[host] = (now + expires, call_id, cseq)
        listed = {str(NameAddress.parse(v).uri): expires_of(v) for v in contacts_of(outcome)}
        if outcome.ok:
            assert listed == {f"sip:alice@{h}": round(v[0] - now) for h, v in model.items()}
        assert {b.contact for b in outcome.bindings} == {f"sip:alice@{h}" for h in model}
    assert {b.contact for b in reg.lookup("alice", now)} == {f"sip:alice@{h}" for h in model}


def test_binding_contact_value() -> None:
    binding = Binding[Source](
        user="alice",
        contact="sip:alice@x",
        params={"q": "0.5", "ob": None},
        source=PHONE,
        transport="udp",
        expires_at=100.0,
        refreshed_at=0.0,
        call_id="c",
        cseq=1,
    )
    assert binding.contact_value(10.0) == "<sip:alice@x>;q=0.5;ob;expires=90"

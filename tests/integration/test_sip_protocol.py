"""The server's SIP behaviour seen from a bare peer on loopback.

Each test sends real requests over UDP (or TCP) to a running server and
checks the responses it sends back: the RFC 3261 answers to what it does not
support, CANCEL, BYE in both directions, offerless INVITEs, merged requests.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import ServerProcess, start_server
from tests.support.rawsip import SipProbe, parse_reply, sdp_offer
from tests.support.sipp import run_sipp

pytestmark = pytest.mark.integration

SCENARIOS = Path(__file__).parent / "scenarios"
SIPP_DIR = Path(__file__).parent / "sipp"
ROUTES = {
    "echo": "echo",
    "ring": "ring",
    "bye": "bye",
    "ringing": "ringing",
    "sms": "sms",
}  # no "*": unknown users get 404


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_server(tmp_path_factory.mktemp("sip"), routes=ROUTES, scenarios=SCENARIOS)
    yield proc
    assert proc.stop() == 0, proc.log_text()[-5000:]


@pytest.fixture
def probe(server: ServerProcess) -> Iterator[SipProbe]:
    with SipProbe(server.sip_port) as p:
        yield p


def ack_for(probe: SipProbe, invite: str, reply_to_tag: str | None) -> str:
    """The ACK for a final response to ``invite`` (same branch for non-2xx)."""
    branch = re.search(r"branch=([^;\s]+)", invite)
    call_id = re.search(r"Call-ID: (\S+)", invite)
    cseq = re.search(r"CSeq: (\d+)", invite)
    assert branch and call_id and cseq
    return probe.build(
        "ACK",
        user=re.search(r"sip:([^@]+)@", invite).group(1),  # type: ignore[union-attr]
        call_id=call_id.group(1),
        cseq=int(cseq.group(1)),
        branch=branch.group(1),
        to_tag=reply_to_tag,
    )


def test_options_reports_capabilities(probe: SipProbe) -> None:
    probe.send(probe.build("OPTIONS"))
    reply = probe.expect_final()
    assert reply.status == 200
    allow = reply.header("allow") or ""
    assert {"INVITE", "ACK", "CANCEL", "BYE", "OPTIONS"} <= {m.strip() for m in allow.split(",")}
    assert reply.header("accept") == "application/sdp"


@pytest.mark.parametrize(
    ("method", "status"),
    [("REGISTER", 405), ("SUBSCRIBE", 405), ("FOO", 501), ("BAR-BAZ", 501)],
)
def test_methods_we_do_not_serve(probe: SipProbe, method: str, status: int) -> None:
    probe.send(probe.build(method))
    reply = probe.expect_final()
    assert reply.status == status
    assert "INVITE" in (reply.header("allow") or "")


def test_unsupported_extension_gets_420_naming_it(probe: SipProbe) -> None:
    probe.send(probe.build("INVITE", headers=["Require: foo, bar"], body=sdp_offer()))
    reply = probe.expect_final()
    assert reply.status == 420
    assert (reply.header("unsupported") or "").replace(" ", "") == "foo,bar"


def test_non_sdp_body_gets_415(probe: SipProbe) -> None:
    probe.send(probe.build("INVITE", headers=["Content-Type: text/plain"], body="hello"))
    reply = probe.expect_final()
    assert reply.status == 415
    assert reply.header("accept") == "application/sdp"


def test_no_common_codec_gets_488_with_warning(probe: SipProbe) -> None:
    probe.send(probe.build("INVITE", body=sdp_offer(codecs="18")))
    reply = probe.expect_final()
    assert reply.status == 488
    assert (reply.header("warning") or "").startswith("305 ")


def test_unknown_user_gets_404(probe: SipProbe) -> None:
    probe.send(probe.build("INVITE", user="nobody", body=sdp_offer()))
    reply = probe.expect_final()
    assert reply.status == 404


def test_in_dialog_requests_for_unknown_dialogs_get_481(probe: SipProbe) -> None:
    for method in ("BYE", "INVITE"):
        probe.send(
            probe.build(method, to_tag="nosuchtag", body=sdp_offer() if method == "INVITE" else "")
        )
        assert probe.expect_final().status == 481
    probe.send(probe.build("CANCEL"))
    assert probe.expect_final().status == 481


def test_cancel_before_answer(probe: SipProbe, server: ServerProcess) -> None:
    invite = probe.build("INVITE", user="ring", body=sdp_offer())
    probe.send(invite)
    first = probe.recv()
    assert first is not None and first.status == 100
    ringing = probe.recv()
    assert ringing is not None and ringing.status == 180 and ringing.to_tag
    # CANCEL: same Request-URI, Call-ID, CSeq number and branch as the INVITE (RFC 3261 9.1).
    cancel = invite.split("\r\n")
    cancel = [
        line.replace("INVITE", "CANCEL") if line.startswith(("INVITE ", "CSeq:")) else line
        for line in cancel
        if not line.startswith(("Content-Type", "Contact"))
    ]
    text = "\r\n".join(cancel)
    text = text[: text.index("\r\n\r\n")].replace(
        re.search(r"Content-Length: \d+", text).group(0),
        "Content-Length: 0",  # type: ignore[union-attr]
    )
    probe.send(text + "\r\n\r\n")
    replies = [probe.recv(), probe.recv()]
    statuses = sorted(r.status for r in replies if r is not None)
    assert statuses == [200, 487]
    terminated = next(r for r in replies if r is not None and r.status == 487)
    assert terminated.header("cseq") == "1 INVITE"
    probe.send(ack_for(probe, invite, terminated.to_tag))
    # The 487 is not retransmitted once acknowledged (RFC 3261 17.2.1: Confirmed).
    assert probe.recv(1.5) is None


def test_server_hangs_up_with_bye(probe: SipProbe) -> None:
    invite = probe.build("INVITE", user="bye", body=sdp_offer())
    probe.send(invite)
    ok = probe.expect_final()
    assert ok.status == 200
    assert b"m=audio" in ok.body and ok.header("content-type") == "application/sdp"
    assert ok.header("contact")
    probe.send(
        probe.build(
            "ACK",
            user="bye",
            call_id=ok.header("call-id"),
            to_tag=ok.to_tag,
            cseq=1,
        )
    )
    bye = probe.recv_request(timeout=10)
    assert bye is not None and bye.startswith(b"BYE ")
    text = bye.decode()
    assert f"tag={ok.to_tag}" in re.search(r"(?im)^From:.*$", text).group(0)  # type: ignore[union-attr]
    assert "tag=probe1" in re.search(r"(?im)^To:.*$", text).group(0)  # type: ignore[union-attr]
    assert re.search(r"(?im)^Reason: Q\.850;cause=16", text)
    # Answer the BYE so the server's transaction completes.
    head = text.split("\r\n\r\n")[0].split("\r\n")
    keep = [
        h for h in head[1:] if h.split(":")[0].lower() in ("via", "from", "to", "call-id", "cseq")
    ]
    probe.send("SIP/2.0 200 OK\r\n" + "\r\n".join(keep) + "\r\nContent-Length: 0\r\n\r\n")


def test_caller_hangs_up_with_bye(probe: SipProbe) -> None:
    invite = probe.build("INVITE", user="echo", body=sdp_offer())
    probe.send(invite)
    ok = probe.expect_final()
    assert ok.status == 200
    call_id = ok.header("call-id")
    probe.send(probe.build("ACK", call_id=call_id, to_tag=ok.to_tag))
    probe.send(probe.build("BYE", call_id=call_id, to_tag=ok.to_tag, cseq=2))
    assert probe.expect_final().status == 200
    # The dialog is gone: a second BYE gets 481.
    probe.send(probe.build("BYE", call_id=call_id, to_tag=ok.to_tag, cseq=3))
    assert probe.expect_final().status == 481


def test_offerless_invite_gets_an_offer_and_takes_the_answer_in_ack(probe: SipProbe) -> None:
    probe.send(probe.build("INVITE", user="echo"))
    ok = probe.expect_final()
    assert ok.status == 200
    assert b"m=audio" in ok.body and b"RTP/AVP 0 8 101" in ok.body
    call_id = ok.header("call-id")
    probe.send(
        probe.build("ACK", call_id=call_id, to_tag=ok.to_tag, body=sdp_offer(codecs="8 101"))
    )
    probe.send(probe.build("BYE", call_id=call_id, to_tag=ok.to_tag, cseq=2))
    assert probe.expect_final().status == 200


def test_merged_request_gets_482(probe: SipProbe) -> None:
    # The same INVITE (Call-ID, From tag, CSeq) arriving on a second path with another branch.
    first = probe.build("INVITE", user="ring", body=sdp_offer(), call_id="merge-1")
    second = probe.build("INVITE", user="ring", body=sdp_offer(), call_id="merge-1")
    probe.send(first)
    assert probe.recv().status == 100  # type: ignore[union-attr]
    probe.send(second)
    statuses = []
    for _ in range(3):
        reply = probe.recv(2)
        if reply is None:
            break
        statuses.append(reply.status)
        if reply.status == 482:
            break
    assert 482 in statuses


def test_retransmitted_invite_makes_one_call(probe: SipProbe, server: ServerProcess) -> None:
    invite = probe.build("INVITE", user="ring", body=sdp_offer(), call_id="retrans-1")
    for _ in range(3):
        probe.send(invite)
        time.sleep(0.05)
    time.sleep(0.5)
    started = [line for line in server.log_text().splitlines()
               if '"call started"' in line and "retrans-1" in line]  # fmt: skip
    assert len(started) == 1


def test_invite_over_tcp(server: ServerProcess) -> None:
    with SipProbe(server.sip_port, transport="tcp") as probe:
        probe.send(probe.build("INVITE", user="echo", body=sdp_offer()))
        ok = probe.expect_final()
        assert ok.status == 200
        assert "transport=tcp" in (ok.header("contact") or "")
        call_id = ok.header("call-id")
        probe.send(probe.build("ACK", call_id=call_id, to_tag=ok.to_tag))
        probe.send(probe.build("BYE", call_id=call_id, to_tag=ok.to_tag, cseq=2))
        assert probe.expect_final().status == 200


def test_tcp_messages_split_and_merged(server: ServerProcess) -> None:
    """One message in many segments, two messages in one segment, a keep-alive ping."""
    with SipProbe(server.sip_port, transport="tcp") as probe:
        data = probe.build("OPTIONS").encode()
        for i in range(0, len(data), 7):
            probe.send(data[i : i + 7])
            time.sleep(0.002)
        assert probe.expect_final().status == 200
        probe.send(probe.build("OPTIONS") + probe.build("OPTIONS"))
        assert probe.expect_final().status == 200
        assert probe.expect_final().status == 200
        probe.sock.sendall(b"\r\n\r\n")
        assert probe.sock.recv(10) == b"\r\n"  # RFC 5626 3.5.1 pong


def test_parse_reply_reads_compact_headers() -> None:
    reply = parse_reply(b"SIP/2.0 200 OK\r\nt: <sip:a@b>;tag=x\r\nl: 0\r\n\r\n")
    assert reply is not None and reply.to_tag == "x"


def test_reliable_provisional_responses_with_sipp(server: ServerProcess, tmp_path: Path) -> None:
    """RFC 3262: a caller requiring 100rel gets a reliable 180 it PRACKs (sipp XML)."""
    result = run_sipp(server.target, scenario=SIPP_DIR / "uac_prack.xml", service="ringing",
                      timeout=30, workdir=tmp_path)  # fmt: skip
    result.assert_ok(calls=1)


def test_unacknowledged_reliable_180_is_retransmitted(probe: SipProbe) -> None:
    probe.send(probe.build("INVITE", user="ringing", body=sdp_offer(),
                           headers=["Require: 100rel", "Supported: 100rel"]))  # fmt: skip
    ringing = [r for r in (probe.recv(), probe.recv(), probe.recv()) if r and r.status == 180]
    assert len(ringing) >= 2, "the reliable 180 was not retransmitted"
    assert all(r.header("rseq") == ringing[0].header("rseq") for r in ringing)
    assert ringing[0].header("require") == "100rel"
    call_id, tag = ringing[0].header("call-id"), ringing[0].to_tag
    wrong = f"RAck: {int(ringing[0].header('rseq') or 0) + 5} 1 INVITE"
    probe.send(probe.build("PRACK", user="ringing", call_id=call_id, to_tag=tag, cseq=2,
                           headers=[wrong]))  # fmt: skip
    replies = []
    while (reply := probe.recv(1.0)) is not None and reply.status == 180:
        pass
    replies.append(reply)
    assert replies[0] is not None and replies[0].status == 481
    good = f"RAck: {ringing[0].header('rseq')} 1 INVITE"
    probe.send(probe.build("PRACK", user="ringing", call_id=call_id, to_tag=tag, cseq=3,
                           headers=[good]))  # fmt: skip
    statuses = []
    while (reply := probe.recv(3.0)) is not None:
        statuses.append((reply.status, reply.header("cseq")))
        if reply.status == 200 and reply.header("cseq") == "1 INVITE":
            break
    assert (200, "3 PRACK") in statuses and (200, "1 INVITE") in statuses
    probe.send(probe.build("ACK", user="ringing", call_id=call_id, to_tag=tag))
    probe.send(probe.build("BYE", user="ringing", call_id=call_id, to_tag=tag, cseq=4))


def test_sip_message_runs_the_inbound_message_branch(
    probe: SipProbe, server: ServerProcess
) -> None:
    headers = ["Content-Type: text/plain;charset=utf-8"]
    probe.send(probe.build("MESSAGE", user="sms", headers=headers, body="hello there"))
    assert probe.expect_final().status == 200
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and '"sms from probe: hello there"' not in server.log_text():
        time.sleep(0.1)
    assert '"sms from probe: hello there"' in server.log_text()
    probe.send(probe.build("MESSAGE", user="sms", headers=["Content-Type: application/json"],
                           body="{}"))  # fmt: skip
    assert probe.expect_final().status == 415
    probe.send(probe.build("MESSAGE", user="nobody", headers=headers, body="hi"))
    assert probe.expect_final().status == 404

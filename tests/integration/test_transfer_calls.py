"""transfer@v1 and incoming REFER with real phones.

Phone A calls the server; the scenario hands A to phone B, by REFER (A's
baresip calls B itself, the server leaves) or by bridging. The other way, B
is the callee of a dial@v1 bridge and presses its transfer button for phone
C: the server calls C and puts it in B's place. Each phone sends its own
tone; what each heard (its recording) says who was connected to whom.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.integration.conftest import ServerProcess, start_server
from tests.integration.test_dial import write_bridge
from tests.support import audio
from tests.support.baresip import Baresip
from tests.support.sipp import SippBackground, run_sipp

pytestmark = pytest.mark.integration

SIPP_DIR = Path(__file__).parent / "sipp"
HZ = {"a": 700.0, "b": 1100.0, "c": 1500.0}

TRANSFER = """\
branches:
  inbound-call:
    actions:
      - action: answer@v1
      - action: pause@v1
        params: {{seconds: 1}}
      - action: transfer@v1
        params: {{target: "{target}", mode: {mode}}}
        result: $how
      - action: log@v1
        params: {{message: "transfer ${{how}}"}}
      - action: say@v1
        params: {{text: "The transfer did not work."}}
      - action: hangup@v1
"""


def phone(tmp_path: Path, name: str, **options: object) -> Baresip:
    wav = audio.make_tone_wav(tmp_path / f"{name}.wav", HZ[name], 20.0, amplitude=0.4)
    return Baresip(
        user=name,
        input_wav=wav,
        max_call_s=40,
        workdir=tmp_path / name,
        **options,  # type: ignore[arg-type]
    )


def transfer_server(tmp_path: Path, target: str, mode: str) -> ServerProcess:
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    (scenarios / "xfer.yaml").write_text(TRANSFER.format(target=target, mode=mode))
    return start_server(tmp_path / "server", routes={"xfer": "xfer"}, scenarios=scenarios)


def hears(samples: audio.Samples, rate: int, who: str) -> bool:
    return audio.tone_present(samples, rate, HZ[who], 1.5)


def test_refer_hands_the_caller_to_the_target(tmp_path: Path) -> None:
    with phone(tmp_path, "b", auto_answer=True) as b:
        server = transfer_server(tmp_path, b.sip_uri, "refer")
        try:
            with phone(tmp_path, "a") as a:
                a.dial(server.uri("xfer"))
                a.wait_established(timeout=10)
                # A's phone was told to call B, did, and the server left.
                b.wait_established(timeout=10)
                time.sleep(3)
                assert "TRANSFER" in a.event_types()
                first, second = a.recordings()
                heard_b, rate = audio.read_mono(second)
                heard_a, rate_a = b.recorded_audio()
                a.hangup()
                b.wait_closed(timeout=10)
        finally:
            server.stop()
    assert hears(heard_b, rate, "b"), "A did not reach B"
    assert hears(heard_a, rate_a, "a"), "B did not hear A"
    assert server.log_records("transfer transferred")
    [ended] = server.log_records("call ended")
    assert ended["source"] == "server"  # we hung up once A reported 200 in a NOTIFY
    assert first != second


def test_a_failed_refer_leaves_the_call_with_the_scenario(tmp_path: Path) -> None:
    """A's call to the target is refused (486): A's phone says so in a NOTIFY,
    and the scenario goes on with A."""
    with SippBackground(scenario=SIPP_DIR / "uas_busy.xml", workdir=tmp_path / "uas") as busy:
        server = transfer_server(tmp_path, busy.uri, "refer")
        try:
            with phone(tmp_path, "a") as a:
                a.dial(server.uri("xfer"))
                a.wait_established(timeout=10)
                assert a.wait_closed(timeout=20) == "486 Busy Here"  # A's call to the target
                assert a.wait_closed(timeout=20) == "Connection reset by peer"
                samples, rate = audio.read_mono(a.recordings()[0])
            busy.wait(timeout=10).assert_ok(calls=1)
        finally:
            server.stop()
    assert server.log_records("transfer failed")
    assert audio.speech_seconds(samples, rate) > 0.5, "the scenario did not go on"


@pytest.mark.parametrize(
    ("final", "outcome"), [("200 OK", "transferred"), ("486 Busy Here", "failed")]
)
def test_refer_to_sipp_and_its_notifies(tmp_path: Path, final: str, outcome: str) -> None:
    """sipp as the transferee: the REFER names the target, sipp answers 202 and
    reports "100 Trying" then ``final`` in NOTIFYs (message/sipfrag); the server
    leaves after a 2xx, else the scenario goes on; either way the server hangs up."""
    target = "sip:carol@example.invalid"
    server = transfer_server(tmp_path, target, "refer")
    try:
        result = run_sipp(
            server.target,
            scenario=SIPP_DIR / "uac_refer.xml",
            service="xfer",
            variables={"final": final},
            timeout=30,
            workdir=tmp_path / "sipp",
        )
        result.assert_ok(calls=1)
        refer = next(m for m in result.messages.split("\n\n") if m.lstrip().startswith("REFER "))
        assert f"Refer-To: <{target}>" in refer
        assert "Referred-By: <sip:mediaserver@127.0.0.1>" in refer
        assert server.scenario_logs("transfer ")[:1] == [f"transfer {outcome}"]
        (ended,) = server.log_records("call ended")
        assert ended["source"] == "server" and ended["cause"] == "normal_clearing"
    finally:
        assert server.stop() == 0


def test_bridge_mode_joins_the_caller_to_the_target(tmp_path: Path) -> None:
    with phone(tmp_path, "b", auto_answer=True) as b:
        server = transfer_server(tmp_path, b.sip_uri, "bridge")
        try:
            with phone(tmp_path, "a") as a:
                a.dial(server.uri("xfer"))
                a.wait_established(timeout=10)
                b.wait_established(timeout=10)
                time.sleep(3)
                heard_a, rate = a.recorded_audio()
                heard_b, rate_b = b.recorded_audio()
                b.hangup()
                b.wait_closed(timeout=10)
                assert a.wait_closed(timeout=10) == "Connection reset by peer"
                assert "TRANSFER" not in a.event_types()
        finally:
            server.stop()
    assert hears(heard_a, rate, "b") and hears(heard_b, rate_b, "a")
    assert server.log_records("transfer transferred")


def test_the_callee_of_a_bridge_transfers_the_caller(tmp_path: Path) -> None:
    """B answers A's dial@v1 bridge, then transfers A to C (REFER to the server):
    the server calls C and puts it in B's place; A never hung up."""
    with phone(tmp_path, "b", auto_answer=True) as b, phone(tmp_path, "c", auto_answer=True) as c:
        scenarios = tmp_path / "scenarios"
        write_bridge(scenarios, b.sip_uri)
        server = start_server(tmp_path / "server", routes={"bridge": "bridge"}, scenarios=scenarios)
        try:
            with phone(tmp_path, "a") as a:
                a.dial(server.uri("bridge"))
                a.wait_established(timeout=10)
                b.wait_established(timeout=10)
                time.sleep(2)
                heard_before, rate = a.recorded_audio()
                b.command("transfer", c.sip_uri)
                c.wait_established(timeout=10)
                b.wait_closed(timeout=10)
                time.sleep(3)
                heard_after, _ = a.recorded_audio()
                heard_by_c, rate_c = c.recorded_audio()
                assert len(a.recordings()) == 1, "A's call was replaced, not kept"
                c.hangup()
                c.wait_closed(timeout=10)
                assert a.wait_closed(timeout=20) == "Connection reset by peer"
        finally:
            server.stop()
    assert hears(heard_before, rate, "b")
    assert hears(heard_after[-2 * rate :], rate, "c"), "A was not put through to C"
    assert not hears(heard_after[-2 * rate :], rate, "b")
    assert hears(heard_by_c, rate_c, "a"), "C did not hear A"
    assert server.log_records("bridge transferred")
    assert server.log_records(f"dial result answered {c.sip_uri}")


def test_a_sipp_callee_transfers_the_caller_to_another_sipp(tmp_path: Path) -> None:
    """B, the callee of a dial@v1 bridge, REFERs the call to C: the server
    answers 202, calls C, reports 100 then 200 in NOTIFYs, connects A and C;
    B hangs up, C ends the call after a while, and A's scenario goes on."""
    with (
        SippBackground(
            scenario=SIPP_DIR / "uas_answer_then_bye.xml",
            variables={"hold_ms": 2000},
            workdir=tmp_path / "c",
        ) as c,
        SippBackground(
            scenario=SIPP_DIR / "uas_refer.xml",
            variables={"target": c.uri},
            workdir=tmp_path / "b",
        ) as b,
    ):
        scenarios = tmp_path / "scenarios"
        write_bridge(scenarios, b.uri)
        server = start_server(tmp_path / "server", routes={"bridge": "bridge"},
                              scenarios=scenarios)  # fmt: skip
        try:
            a = run_sipp(
                server.target,
                scenario=SIPP_DIR / "uac_bye_from_server.xml",
                service="bridge",
                recv_timeout_ms=20000,
                timeout=30,
                workdir=tmp_path / "a",
            )
            a.assert_ok(calls=1)
            b.wait(timeout=10).assert_ok(calls=1)
            c.wait(timeout=10).assert_ok(calls=1)
            # $dial names who the caller was connected to last: the transfer target.
            assert server.scenario_logs("dial result") == [f"dial result answered {c.uri}"]
            ended = {r["call_id"]: r for r in server.log_records("call ended")}
            assert len(ended) == 3  # A in, B out, C out
        finally:
            assert server.stop() == 0

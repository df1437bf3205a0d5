"""fork@v1 with real peers: the forked RTP is received on UDP sockets of the test,
parsed as RTP, decoded from G.711 and analysed.

A baresip phone sends its own tone; the scenario plays another. ``rx`` must
carry the phone's tone (what the peer sends us), ``tx`` the scenario's (what
the peer receives), and nothing of either after ``fork@v1 stop``. ``target``
carries both behind STREP headers telling the direction and the call. In a
``dial@v1`` bridge, ``tx`` is the callee's audio relayed to the caller.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import ServerProcess, start_server
from tests.support import audio
from tests.support.baresip import Baresip
from tests.support.forked import ForkReceiver, RtpCopy, decode_pcmu, parse_rtp

pytestmark = pytest.mark.integration

RATE = 8000


@pytest.fixture
def receivers() -> Iterator[list[ForkReceiver]]:
    made = [ForkReceiver() for _ in range(3)]
    yield made
    for receiver in made:
        receiver.close()


def serve(tmp_path: Path, scenarios: dict[str, str]) -> ServerProcess:
    folder = tmp_path / "scenarios"
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in scenarios.items():
        (folder / f"{name}.yaml").write_text(text)
    return start_server(
        tmp_path / "server", routes={n: n for n in scenarios}, scenarios=folder, codecs="[PCMU]"
    )


def call_id_of(server: ServerProcess) -> str:
    (started,) = [r for r in server.log_records("call started") if r.get("direction") == "inbound"]
    return str(started["call_id"])


RX_TX = """\
branches:
  inbound-call:
    actions:
      - action: answer@v1
      - action: fork@v1
        params: {{rx: "{rx}", tx: "{tx}"}}
      - action: play@v1
        params: {{url: "{played}"}}
      - action: echo@v1
        params: {{seconds: 2}}
      - action: fork@v1
        params: {{stop: true}}
      - action: log@v1
        params: {{message: "fork stopped"}}
      - action: play@v1
        params: {{url: "{after}"}}
      - action: hangup@v1
"""


def test_rx_and_tx_carry_each_direction_as_plain_rtp(
    tmp_path: Path, receivers: list[ForkReceiver]
) -> None:
    rx, tx, _ = receivers
    played = audio.make_tone_wav(tmp_path / "played.wav", 1000, 2.0, amplitude=0.4)
    after = audio.make_tone_wav(tmp_path / "after.wav", 1400, 1.5, amplitude=0.4)
    phone_tone = audio.make_tone_wav(tmp_path / "phone.wav", 500, 12.0, amplitude=0.4)
    scenario = RX_TX.format(rx=rx.spec, tx=tx.spec, played=played, after=after)
    server = serve(tmp_path, {"forked": scenario})
    try:
        with Baresip(input_wav=phone_tone, codecs=("PCMU",), max_call_s=30) as phone:
            phone.dial(server.uri("forked"))
            phone.wait_established(timeout=10)
            assert phone.wait_closed(timeout=30) == "Connection reset by peer"
            sent_by_phone, _ = audio.read_mono(phone.sent_wav)
            heard_by_phone, _ = phone.recorded_audio()
    finally:
        server.stop()
    time.sleep(0.2)
    inbound, outbound = rx.rtp(), tx.rtp()
    heard_in, heard_out = decode_pcmu(inbound), decode_pcmu(outbound)
    # rx: what the phone sent, from the answer until the stop (play 2 s + echo 2 s).
    assert audio.tone_present(heard_in, RATE, 500, 3.0), audio.dominant_frequency(heard_in, RATE)
    assert not audio.tone_present(heard_in, RATE, 1000, 0.2)
    assert len({c.ssrc for c in inbound}) == 1
    # tx: the played tone, then the phone's own tone echoed back to it.
    assert audio.tone_present(heard_out, RATE, 1000, 1.8)
    assert audio.tone_present(heard_out, RATE, 500, 1.5)
    assert len({c.ssrc for c in outbound}) == 1
    # After fork@v1 stop, the 1400 Hz tone reached the phone but no fork.
    assert audio.tone_present(heard_by_phone, RATE, 1400, 1.0)
    assert not audio.tone_present(heard_out, RATE, 1400, 0.1)
    assert server.scenario_logs("fork stopped") == ["fork stopped"]
    (started,) = server.log_records("fork started")
    assert (started["rx"], started["tx"], started["target"]) == (rx.spec, tx.spec, None)
    (stopped,) = [r for r in server.log_records("fork stopped") if "reason" in r]
    assert stopped["reason"] == "stopped"
    assert (stopped["received_copies"], stopped["sent_copies"]) == (len(inbound), len(outbound))
    # Copies come from the call's own RTP port; rx is the phone's stream, packet for packet.
    assert rx.senders == tx.senders and len(rx.senders) == 1
    assert 3.5 * 50 <= len(inbound) <= 4.5 * 50 + 10, len(inbound)
    assert len(sent_by_phone) > 0
    (ended,) = server.log_records("call ended")
    media = ended["media"]
    assert media["forked_rx"] == len(inbound) and media["forked_tx"] == len(outbound)


TARGET = """\
branches:
  inbound-call:
    actions:
      - action: answer@v1
      - action: fork@v1
        params: {{target: "{target}"}}
      - action: play@v1
        params: {{url: "{played}"}}
      - action: hangup@v1
"""


def test_target_carries_both_directions_behind_strep_headers(
    tmp_path: Path, receivers: list[ForkReceiver]
) -> None:
    target = receivers[0]
    played = audio.make_tone_wav(tmp_path / "played.wav", 1000, 3.0, amplitude=0.4)
    phone_tone = audio.make_tone_wav(tmp_path / "phone.wav", 500, 12.0, amplitude=0.4)
    server = serve(
        tmp_path, {"forked": TARGET.format(target=target.spec.removeprefix("udp:"), played=played)}
    )
    try:
        with Baresip(input_wav=phone_tone, codecs=("PCMU",), max_call_s=30) as phone:
            phone.dial(server.uri("forked"))
            phone.wait_established(timeout=10)
            assert phone.wait_closed(timeout=30) == "Connection reset by peer"
    finally:
        server.stop()
    time.sleep(0.2)
    call_id = call_id_of(server)
    by_direction: dict[int, list[RtpCopy]] = {0: [], 1: []}
    for _, data in target.datagrams:
        header, packet = data[:24], data[24:]
        # STREP version 1: 0b11, version 0001, L = 0 (the caller's leg), D; length 24.
        assert header[0] >> 2 == 0b11_0001 and header[0] & 0b10 == 0, f"{header[0]:#010b}"
        assert header[1] == 24 and header[2:8] == bytes(6)
        assert header[8:24] == call_id.encode().ljust(16, b"\0")
        by_direction[header[0] & 1].append(parse_rtp(packet))
    received, sent = decode_pcmu(by_direction[0]), decode_pcmu(by_direction[1])
    assert audio.tone_present(received, RATE, 500, 2.0)
    assert not audio.tone_present(received, RATE, 1000, 0.2)
    assert audio.tone_present(sent, RATE, 1000, 2.5)
    assert not audio.tone_present(sent, RATE, 500, 0.2)
    (stopped,) = server.log_records("fork stopped")
    assert stopped["reason"] == "hangup"  # the end of the call stopped it
    assert stopped["received_copies"] == len(by_direction[0])
    assert stopped["sent_copies"] == len(by_direction[1])


BRIDGE = """\
branches:
  inbound-call:
    actions:
      - action: fork@v1
        params: {{rx: "{rx}", tx: "{tx}"}}
      - action: dial@v1
        params: {{targets: ["{callee}"], timeout: 15}}
      - action: hangup@v1
"""


def test_a_bridged_calls_tx_is_the_callees_relayed_audio(
    tmp_path: Path, receivers: list[ForkReceiver]
) -> None:
    """Both legs PCMU: the relay would take its fast path, which a fork leaves."""
    rx, tx, _ = receivers
    caller_tone = audio.make_tone_wav(tmp_path / "a.wav", 700, 10.0, amplitude=0.4)
    callee_tone = audio.make_tone_wav(tmp_path / "b.wav", 1100, 10.0, amplitude=0.4)
    with Baresip(input_wav=callee_tone, auto_answer=True, codecs=("PCMU",), max_call_s=30) as b:
        server = serve(
            tmp_path, {"bridge": BRIDGE.format(rx=rx.spec, tx=tx.spec, callee=b.sip_uri)}
        )
        try:
            with Baresip(input_wav=caller_tone, codecs=("PCMU",), max_call_s=30) as a:
                a.dial(server.uri("bridge"))
                a.wait_established(timeout=10)
                b.wait_established(timeout=10)
                time.sleep(3)
                heard_a, _ = a.recorded_audio()
                a.hangup()
                b.wait_closed(timeout=10)
        finally:
            server.stop()
    time.sleep(0.2)
    heard_in, heard_out = decode_pcmu(rx.rtp()), decode_pcmu(tx.rtp())
    assert audio.tone_present(heard_a, RATE, 1100, 2.0), "the caller did not hear the callee"
    assert audio.tone_present(heard_in, RATE, 700, 2.0), "rx lacks the caller's tone"
    assert not audio.tone_present(heard_in, RATE, 1100, 0.2)
    assert audio.tone_present(heard_out, RATE, 1100, 2.0), "tx lacks the callee's relayed tone"
    assert not audio.tone_present(heard_out, RATE, 700, 0.2)

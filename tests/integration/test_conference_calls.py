"""conference@v1 with real phones: three baresip callers, each sending its own tone.

Each must hear the two others and not itself (frequency analysis of the WAV
each phone recorded), one of them on PCMA while the others are on PCMU; the
room's recording holds all three; a key takes one caller out.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from tests.integration.conftest import start_server
from tests.integration.test_media_actions import scenario_logs
from tests.support import audio
from tests.support.baresip import Baresip

pytestmark = pytest.mark.integration

CONFERENCE = """\
branches:
  inbound-call:
    actions:
      - action: conference@v1
        params: {name: "room", record: true, exit_on_key: "*"}
        result: $how
      - action: log@v1
        params: {message: "left conference ${$how}"}
      - action: hangup@v1
"""

TONES = {"a": 500.0, "b": 900.0, "c": 1300.0}
CODECS = {"a": "PCMU", "b": "PCMU", "c": "PCMA"}


def powers(samples: npt.NDArray[np.float64], rate: int) -> dict[str, float]:
    return {name: audio.goertzel_power(samples, rate, hz) for name, hz in TONES.items()}


def test_three_callers_hear_the_others_but_not_themselves(tmp_path: Path) -> None:
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    (scenarios / "conf.yaml").write_text(CONFERENCE)
    server = start_server(tmp_path / "server", routes={"conf": "conf"}, scenarios=scenarios)
    phones: dict[str, Baresip] = {}
    heard: dict[str, npt.NDArray[np.float64]] = {}
    try:
        for name, hz in TONES.items():
            wav = audio.make_tone_wav(tmp_path / f"{name}.wav", hz, 20.0, amplitude=0.3)
            phone = Baresip(
                user=name, input_wav=wav, codecs=(CODECS[name],), max_call_s=40,
                workdir=tmp_path / name,
            )  # fmt: skip
            phones[name] = phone.start()
            phone.dial(server.uri("conf"))
            phone.wait_established(timeout=10)
            time.sleep(0.5)
        time.sleep(3.0)
        for name, phone in phones.items():
            samples, rate = phone.recorded_audio()
            heard[name] = samples[-2 * rate :]  # the last 2 s: all three in the room
        phones["a"].send_dtmf("*")
        assert phones["a"].wait_closed(timeout=10) == "Connection reset by peer"
        time.sleep(1.0)
        for name in ("b", "c"):
            phones[name].hangup()
            phones[name].wait_closed(timeout=10)
    finally:
        for phone in phones.values():
            phone.close()
        server.stop()

    for name, samples in heard.items():
        got = powers(samples, 8000)
        others = [other for other in TONES if other != name]
        for other in others:
            assert got[other] > 1e-3, f"{name} did not hear {other}: {got}"
        assert got[name] < 1e-3 * min(got[other] for other in others), f"{name} heard itself"

    # A pressed the exit key and its run went on; B and C hung up, which ends their runs.
    assert [r["event"] for r in scenario_logs(server, "left conference ")] == [
        "left conference key"
    ]
    left = sorted(str(r["outcome"]) for r in server.log_records("conference left"))
    assert left == ["hangup", "hangup", "key"]
    assert [r["participants"] for r in server.log_records("conference joined")] == [1, 2, 3]

    db = sqlite3.connect(server.data_dir / "data" / "mediaserver.db")
    try:
        rows = db.execute("SELECT kind, status, path, duration_ms FROM recordings").fetchall()
    finally:
        db.close()
    ((kind, status, path, duration_ms),) = rows
    assert (kind, status) == ("conference", "ready")
    mix, rate = audio.read_mono(server.data_dir / "data" / "recordings" / path)
    assert duration_ms / 1000 == pytest.approx(len(mix) / rate, abs=0.05)
    assert len(mix) / rate > 4.0
    # While all three were in, the mix held all three tones.
    everyone = powers(mix[int(3.0 * rate) : int(4.5 * rate)], rate)
    assert min(everyone.values()) > 1e-3, everyone

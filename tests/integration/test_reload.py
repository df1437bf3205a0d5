"""SIGHUP reloads scenarios and routes without dropping calls (mediaserver/reload.py).

Each test runs a real server on a scenario folder of its own. The scenario
``long`` plays a WAV tone: 600 Hz before a change, 900 Hz after, so what a
baresip caller heard tells which version its call ran. The call in progress
during a reload must hear its whole 600 Hz to the end, new calls the new
version; a reload with any error must change nothing.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.integration.conftest import ServerProcess, add_route, reload, start_server
from tests.support import audio
from tests.support.baresip import Baresip

pytestmark = pytest.mark.integration

PEER_HUNG_UP = "Connection reset by peer"
OLD_HZ, NEW_HZ = 600, 900
OLD_SECONDS = 5.0

LONG = """\
name: long
branches:
  inbound-call:
    actions:
      - action: answer@v1
      - action: play@v1
        params: {{url: {wav}}}
      - action: hangup@v1
"""

BROKEN = """\
name: broken
branches:
  inbound-call:
    actions:
      - action: nosuch@v1
"""


def scenario_folder(tmp: Path) -> Path:
    folder = tmp / "scenarios"
    folder.mkdir(parents=True)
    audio.make_tone_wav(folder / "old.wav", OLD_HZ, OLD_SECONDS, amplitude=0.4)
    audio.make_tone_wav(folder / "new.wav", NEW_HZ, 2.0, amplitude=0.4)
    (folder / "long.yaml").write_text(LONG.format(wav="old.wav"))
    return folder


def heard_tone(server: ServerProcess, user: str) -> tuple[audio.Samples, int]:
    """Call ``user``, wait for the server to hang up; what the caller heard."""
    with Baresip(max_call_s=30) as phone:
        phone.dial(server.uri(user))
        phone.wait_established(timeout=10)
        assert phone.wait_closed(timeout=20) == PEER_HUNG_UP
        return phone.recorded_audio()


def test_sighup_reloads_while_a_call_plays_to_its_end(tmp_path: Path) -> None:
    folder = scenario_folder(tmp_path)
    server = start_server(tmp_path / "server", routes={"long": "long"}, scenarios=folder)
    try:
        with Baresip(max_call_s=30) as before:
            before.dial(server.uri("late"))
            assert before.wait_closed(timeout=10).startswith("404")  # no such route yet

        with Baresip(max_call_s=30) as phone:
            phone.dial(server.uri("long"))
            phone.wait_established(timeout=10)
            time.sleep(1.0)  # into the 600 Hz
            (folder / "long.yaml").write_text(LONG.format(wav="new.wav"))
            add_route(server, '  "late": long')
            record = reload(server, "reloaded")
            assert record["scenarios_changed"] == ["long"]
            assert record["routes_added"] == ["late"]
            # The call in progress runs the scenario it started with, to its own end.
            assert phone.wait_closed(timeout=20) == PEER_HUNG_UP
            heard, rate = phone.recorded_audio()
        assert audio.tone_present(heard, rate, OLD_HZ, OLD_SECONDS - 1.0), "600 Hz cut short"
        assert not audio.tone_present(heard, rate, NEW_HZ, 0.2)

        # New calls get the new scenario, on the old route and on the new one.
        for user in ("long", "late"):
            heard, rate = heard_tone(server, user)
            assert audio.tone_present(heard, rate, NEW_HZ, 1.5), f"{user}: 900 Hz not heard"
            assert not audio.tone_present(heard, rate, OLD_HZ, 0.2), f"{user}: old version"
        assert server.alive()
    finally:
        assert server.stop() == 0


def test_sighup_with_errors_keeps_what_runs(tmp_path: Path) -> None:
    folder = scenario_folder(tmp_path)
    server = start_server(tmp_path / "server", routes={"long": "long"}, scenarios=folder)
    try:
        # A valid change and two broken files: none of it may be applied.
        (folder / "long.yaml").write_text(LONG.format(wav="new.wav"))
        (folder / "broken.yaml").write_text(BROKEN)
        add_route(server, '  "late": nowhere')
        record = reload(server, "reload refused")
        errors = "\n".join(record["errors"])
        assert f"{folder / 'broken.yaml'}:5:" in errors and "nosuch@v1" in errors, errors
        config_line = len((server.data_dir / "config.yaml").read_text().splitlines())
        assert f"config.yaml:{config_line}:" in errors and "nowhere" in errors, errors

        heard, rate = heard_tone(server, "long")
        assert audio.tone_present(heard, rate, OLD_HZ, OLD_SECONDS - 1.0), "old version lost"
        assert not audio.tone_present(heard, rate, NEW_HZ, 0.2), "half of the reload applied"

        # Once fixed, the next SIGHUP applies it all.
        (folder / "broken.yaml").unlink()
        add_route(server, '  "later": long')
        config = server.data_dir / "config.yaml"
        config.write_text(config.read_text().replace('  "late": nowhere\n', ""))
        record = reload(server, "reloaded")
        assert record["scenarios_changed"] == ["long"] and record["routes_added"] == ["later"]
        heard, rate = heard_tone(server, "later")
        assert audio.tone_present(heard, rate, NEW_HZ, 1.5)
    finally:
        assert server.stop() == 0

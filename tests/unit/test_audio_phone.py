"""Update audio file on the phone: codes (issue, replace, expiry, use), the recording
line chosen by country, the audio-recorder route, and the line's scenario against a
fake call."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from test_audio_files_core import tone
from test_runner_fakes import FakeCall, FakePrompts, FakeServer

from mediaserver.actions.runner import Run
from mediaserver.audio_files import AudioFileBusy, AudioFiles
from mediaserver.audio_phone import (
    CODE_TTL,
    CodeRefused,
    NoRecordingLine,
    RecordingCodes,
    RecordingLine,
    choose_line,
    recording_lines,
)
from mediaserver.audio_recorder import recorder_scenario
from mediaserver.config import load_config
from mediaserver.store import Store


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_code_is_six_digits_for_its_file_until_it_expires() -> None:
    clock = Clock()
    codes = RecordingCodes(clock)
    issued = codes.issue("aaaa1111")
    assert 100000 <= issued.code <= 999999
    assert issued.expires == 1000.0 + CODE_TTL
    assert codes.check(str(issued.code)) == "aaaa1111"
    clock.now += CODE_TTL + 1  # checking renewed it from then: still live
    with pytest.raises(CodeRefused, match="expired"):
        codes.check(str(issued.code))
    with pytest.raises(CodeRefused, match="not a live code"):
        codes.check(str(issued.code))  # forgotten once found expired


def test_entering_a_code_in_time_keeps_it_for_the_call() -> None:
    clock = Clock()
    codes = RecordingCodes(clock)
    code = str(codes.issue("aaaa1111").code)
    clock.now += CODE_TTL - 1
    assert codes.check(code) == "aaaa1111"
    clock.now += CODE_TTL - 1  # the recording took a while: the save still finds it
    assert codes.use(code) == "aaaa1111"
    with pytest.raises(CodeRefused, match="used"):
        codes.use(code)


def test_one_live_code_per_file_and_wrong_codes_are_refused() -> None:
    codes = RecordingCodes(Clock())
    first = str(codes.issue("aaaa1111").code)
    second = str(codes.issue("aaaa1111").code)
    other = str(codes.issue("bbbb2222").code)
    assert len({first, second, other}) == 3
    with pytest.raises(CodeRefused, match="replaced"):
        codes.check(first)
    assert codes.check(second) == "aaaa1111"
    assert codes.check(other) == "bbbb2222"
    for wrong in ("", "12", "abcdef", "1" * 40, "000000"):
        with pytest.raises(CodeRefused):
            codes.check(wrong)


def test_codes_stay_unique_among_the_live_ones() -> None:
    codes = RecordingCodes(Clock())
    issued = {codes.issue(f"{n:08d}").code for n in range(2000)}
    assert len(issued) == 2000


LINES = ["+33199000000", "+14155550100", "recorder"]


@pytest.mark.parametrize(
    ("country", "line"),
    [
        ("FR", "+33199000000"),
        ("US", "+14155550100"),
        ("CA", "+14155550100"),  # no Canadian line: the one with its calling code, +1
        ("GB", "+33199000000"),  # nothing close: the first
        ("ZZ", "+33199000000"),
    ],
)
def test_the_line_is_in_the_country_else_the_closest_else_the_first(
    country: str, line: str
) -> None:
    assert choose_line(LINES, country) == line


def test_the_recording_lines_are_the_routes_to_audio_recorder_but_star() -> None:
    routes = {"*": "audio-recorder", "+33199000000": "audio-recorder", "echo": "echo"}
    assert recording_lines(routes) == ["+33199000000"]
    assert choose_line([], "FR") is None


def test_without_a_recording_line_the_offer_says_which_route_to_add() -> None:
    line = RecordingLine(None, lambda: {"echo": "echo"})  # type: ignore[arg-type]
    with pytest.raises(NoRecordingLine, match="route a number to audio-recorder"):
        line.offer(None, "FR")  # type: ignore[arg-type]


def test_audio_recorder_is_a_route_target_needing_no_scenario_file(tmp_path: Path) -> None:
    (tmp_path / "scenarios").mkdir()  # empty: no scenario named audio-recorder
    config_file = tmp_path / "server.yaml"
    config_file.write_text('routes:\n  "+33199000000": audio-recorder\n  rec: " audio-recorder"\n')
    config = load_config(config_file)
    assert config.routes == {"+33199000000": "audio-recorder", "rec": "audio-recorder"}


async def run_line(server: FakeServer, *presses: tuple[str, float]) -> tuple[str, FakeCall]:
    """The line's scenario on a fake call pressing each ``(keys, at)``, 0.2 s apart."""
    prompts = FakePrompts()
    call = FakeCall(prompts)
    for keys, at in presses:
        call.press(keys, at=at, gap=0.2)
    run = Run(
        recorder_scenario(), "inbound-call", call=call, prompts=prompts, run_id="r", server=server
    )
    outcome = await run.execute()
    assert outcome.status == "completed", outcome
    return outcome.status, call


async def test_the_line_takes_the_code_records_and_keeps_on_1() -> None:
    server = FakeServer()
    server.recording_codes["654321"] = "aaaa1111"
    # The code, then the recording (the fake caller is silent: it ends at the silence
    # timeout, 10 s in), "2" to record again (16 to 21 s), then "1" to keep the second one.
    _, call = await run_line(server, ("654321#", 0.5), ("2", 12.0), ("1", 30.0))
    assert len(call.recordings) == 2
    assert server.recorded_audio_files == [("aaaa1111", call.recordings[1].path)]


async def test_the_line_hangs_up_after_three_wrong_codes() -> None:
    server = FakeServer()
    server.recording_codes["654321"] = "aaaa1111"
    _, call = await run_line(server, ("111111#222222#333333#654321#", 0.5))
    assert call.recordings == []
    assert server.recorded_audio_files == []


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(tmp_path / "ms.db")
    try:
        yield opened
    finally:
        await opened.close()


async def test_saving_makes_the_recording_the_content_and_uses_the_code_up(
    store: Store, tmp_path: Path
) -> None:
    files = AudioFiles(lambda: store, tmp_path / "audio-files")
    line = RecordingLine(files, lambda: {"+33199000000": "audio-recorder"})
    record = await files.create_empty("Greeting")
    offer = line.offer(record, "FR")
    assert offer.number == "+33199000000"
    code = str(offer.code)
    recording = tone(tmp_path / "rec.wav", seconds=2.0, rate=8000, format="WAV")
    assert line.file_for_code(code) == record.id
    # Kept while new content is being converted: refused, and the code stays live.
    await store.audio_files.set_status(record.id, "processing")
    with pytest.raises(AudioFileBusy, match="is processing"):
        await line.save(code, recording)
    await store.audio_files.set_status(record.id, "pending-content")
    saved = await line.save(code, recording)
    assert (saved.status, saved.source) == ("pending-conversion", "phone-record")
    await files.idle()
    ready = await store.audio_files.get(record.id)
    assert ready is not None and (ready.status, ready.source) == ("ready", "phone-record")
    assert 1900 <= ready.duration_ms <= 2100
    with pytest.raises(CodeRefused, match="not a live code"):
        await line.save(code, recording)

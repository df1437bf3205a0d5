"""Real calls from sipp against the example scenarios.

sipp's built-in ``uac`` scenario places many calls at ``echo``; our own XML
scenario replays RFC 2833 digits (the pcaps shipped with sipp) into ``ivr``
and the branch the IVR took is read from the server's log for that call.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.conftest import ServerProcess
from tests.support.sipp import run_sipp

pytestmark = pytest.mark.integration

SIPP_DIR = Path(__file__).parent / "sipp"


def test_many_echo_calls_over_udp(server: ServerProcess, tmp_path: Path) -> None:
    result = run_sipp(
        server.target, scenario="uac", service="echo", calls=60, rate=30, timeout=60,
        workdir=tmp_path,
    )  # fmt: skip
    result.assert_ok(calls=60)


def test_echo_calls_over_tcp(server: ServerProcess, tmp_path: Path) -> None:
    result = run_sipp(
        server.target, scenario="uac", service="echo", calls=20, rate=20, transport="t1",
        timeout=60, workdir=tmp_path,
    )  # fmt: skip
    result.assert_ok(calls=20)


@pytest.mark.parametrize(
    ("digit", "branch"),
    [("1", "ivr: option 1 sales"), ("2", "ivr: option 2 support"), ("3", "ivr: option 3 tone")],
)
def test_ivr_branch_chosen_by_rfc2833_digit(
    server: ServerProcess, tmp_path: Path, digit: str, branch: str
) -> None:
    before = len(server.log_records(branch))
    result = run_sipp(
        server.target,
        scenario=SIPP_DIR / "dtmf_2833.xml",
        service="ivr",
        variables={"digits": digit, "pause_ms": 1500, "gap_ms": 300, "max_wait_ms": 20000},
        timeout=40,
        workdir=tmp_path,
    )
    result.assert_ok(calls=1)
    taken = server.log_records(branch)
    assert len(taken) == before + 1, f"the IVR did not log {branch!r}"
    # The digit arrived exactly once although each pcap sends its end packet three times.
    call_id = taken[-1]["call_id"]
    digits = [r for r in server.log_records("dtmf received") if r.get("call_id") == call_id]
    assert [r["key"] for r in digits] == [digit]
    # The server ended the call (the IVR hangs up after its branch), and said why.
    ended = [r for r in server.log_records("call ended") if r.get("call_id") == call_id]
    assert ended and ended[0]["source"] == "server" and ended[0]["run"] == "completed"


def test_ivr_invalid_digit_prompts_again(server: ServerProcess, tmp_path: Path) -> None:
    """9 is not a valid choice: the IVR says sorry and asks again (then sipp hangs up)."""
    before = len(server.log_records("action"))
    result = run_sipp(
        server.target,
        scenario=SIPP_DIR / "dtmf_2833.xml",
        service="ivr",
        variables={"digits": "9", "pause_ms": 1000, "gap_ms": 300, "max_wait_ms": 6000},
        timeout=40,
        workdir=tmp_path,
    )
    result.assert_ok(calls=1)
    actions = [r for r in server.log_records("action")[before:] if r.get("scenario") == "ivr"]
    gathers = [r for r in actions if r.get("action") == "gather@v1"]
    assert len(gathers) >= 2, "the menu was not offered again after an invalid digit"
    assert any(r.get("action") == "goto@v1" for r in actions)

"""Variables read but never set, reported by ``mediaserver check`` with their line:
an error where nothing can set them (inbound branches), a warning where the run's
start may pass them (api-initiated) or where a bare ${name} may be a JavaScript name."""

from __future__ import annotations

from pathlib import Path

import pytest

from mediaserver.actions.check import check_files
from mediaserver.actions.scenario import load_scenario_text
from mediaserver.actions.variable_use import Read, reads
from mediaserver.cli import main
from mediaserver.yamlsource import ProblemsError

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("source", "bare", "expected"),
    [
        ("$a + $b.c", False, ["$a", "$b"]),
        ("obj.$p + $q[0]", False, ["$q"]),
        ("typeof $x === 'undefined' ? 1 : $y", False, ["$y"]),
        ("typeof($x) == 'string'", False, []),
        ("{$key: 1, other: $value}", False, ["$value"]),
        ("'$not' + \"$this\" + `$nor ${$but_this}`", False, ["$but_this"]),
        ("a ? $x : $y", False, ["$x", "$y"]),
        ("[...$list, 1e5]", False, ["$list"]),
        ("call.from + Math.max(tries, 1)", True, ["$call", "$tries"]),
        ("items.map(x => x.name)", True, []),  # x is the function's own
        ("nothing bare", False, []),
    ],
)
def test_reads_of_an_expression(source: str, bare: bool, expected: list[str]) -> None:
    assert [read.name for read in reads(source, bare=bare)] == expected


def test_a_bare_read_is_marked_so() -> None:
    assert reads("call.from + $digits", bare=True) == [Read("$call", bare=True), Read("$digits")]


TYPO = """\
variables:
  $name: there
branches:
  inbound-call:
    actions:
      - action: answer@v1
      - action: say@v1
        params:
          text: "Hello ${$nmae}"
"""


def test_a_typo_in_an_inbound_branch_is_an_error_with_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "typo.yaml"
    path.write_text(TYPO)
    assert main(["check", str(path)]) == 1
    assert capsys.readouterr().out == (
        f"{path}:9:17: $nmae is read but never set in the inbound-call branch"
        " (did you mean $name?); set it (set@v1, result:) or declare it under variables:\n"
    )
    with pytest.raises(ProblemsError):  # the server refuses it too
        load_scenario_text(TYPO, "typo.yaml")


def test_an_api_initiated_read_is_a_warning_the_start_may_pass_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "remind.yaml"
    path.write_text(
        "branches:\n"
        "  api-initiated:\n"
        "    actions:\n"
        "      - action: log@v1\n"
        '        params: {message: "call ${$who} at ${$time}"}\n'
        "      - action: set@v1\n"
        '        params: {$time: "1"}\n'
    )
    assert main(["check", str(path)]) == 0
    assert capsys.readouterr().out == (
        f"{path}:5:27: warning: $who is read but never set in the api-initiated branch;"
        " unless every start passes it, declare it under variables:\n"
        "1 scenario file(s) valid, 1 warning(s)\n"
    )
    scenario = load_scenario_text(path.read_text(), "remind.yaml")
    assert [str(w.mark.line) for w in scenario.warnings] == ["5"]


def test_a_bare_name_nothing_defines_is_a_warning() -> None:
    scenario = load_scenario_text(
        "branches:\n"
        "  inbound-call:\n"
        "    actions:\n"
        "      - action: log@v1\n"
        '        params: {message: "from ${call.from}, ${nmae}, ${Math.max(1, 2)}"}\n',
        "bare.yaml",
    )
    (warning,) = scenario.warnings
    assert str(warning) == (
        "bare.yaml:5:27: warning: nmae is not a JavaScript name,"
        " and $nmae is never set in the inbound-call branch"
    )


def test_every_way_of_setting_a_variable_counts() -> None:
    scenario = load_scenario_text(
        """\
variables:
  $declared: 1
branches:
  inbound-call:
    actions:
      - action: gather@v1
        params: {max_digits: 1, timeout: 1}
        result: $choice
      - action: set@v1
        params: {$total: "$declared + 1", "$bag.count": "2"}
      - action: foreach@v1
        params:
          items: "[1, 2]"
          as: $each
          do:
            - action: log@v1
              params: {message: "${$each} ${$key} ${$index} ${$choice} ${$total} ${$bag}"}
      - action: log@v1
        params: {message: "${$digits} ${$call.from} ${$now} ${$run.id} ${typeof $maybe}"}
  inbound-message:
    actions:
      - action: log@v1
        params: {message: "${$message.text}"}
""",
        "sets.yaml",
    )
    assert scenario.warnings == ()


def test_variables_of_another_branch_do_not_count() -> None:
    with pytest.raises(ProblemsError, match=r"two.yaml:5:27: \$total is read but never set"):
        load_scenario_text(
            "branches:\n"
            "  inbound-message:\n"
            "    actions:\n"
            '      - action: log@v1\n        params: {message: "${$total}"}\n'
            "  api-initiated:\n"
            "    actions:\n"
            '      - action: set@v1\n        params: {$total: "1"}\n',
            "two.yaml",
        )


def test_the_shipped_and_test_scenarios_have_no_problem_and_no_warning() -> None:
    files = sorted(
        [*(REPO / "configs" / "scenarios").glob("*.yaml"),
         *(REPO / "tests" / "integration" / "scenarios").glob("*.y*ml")]
    )  # fmt: skip
    assert files
    assert check_files(files) == []

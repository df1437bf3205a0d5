"""Loading and validating scenario files: every problem, at its exact place."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_runner_fakes import scenario_text

from mediaserver.actions import registry
from mediaserver.actions.check import check_files
from mediaserver.actions.expressions import Expression, Template
from mediaserver.actions.model import ActionItem
from mediaserver.actions.prompt import PromptItem
from mediaserver.actions.registry import ACTIONS, PLANNED
from mediaserver.actions.scenario import (
    Scenario,
    load_scenario,
    load_scenario_text,
    load_scenarios,
)
from mediaserver.yamlsource import ProblemsError

DATA = Path(__file__).parent / "data"
CONFIGS = Path(__file__).parents[2] / "configs" / "scenarios"

# (line, column, part of the message) for tests/unit/data/bad_scenario.yaml
EXPECTED_PROBLEMS = [
    (2, 7, "name 'not-the-file-name' does not match the file name (expected 'bad_scenario')"),
    (4, 13, "language: 'english!' is not a language tag"),
    (5, 10, "voice: must be one of female, male; got 'robot'"),
    (6, 3, "defaults has no parameter 'speed'"),
    (9, 3, "invalid variable name 'count'"),
    (10, 3, "$call is a read-only built-in variable"),
    (11, 1, "unknown top-level key 'colour'"),
    (13, 3, "unknown branch 'inbound-smss' (did you mean inbound-sms?)"),
    (19, 17, "answer@v1: ring: must be at least 0, got -1"),
    (20, 17, "unknown action 'sya@v1' (did you mean say@v1?)"),
    (21, 17, "say@v2 does not exist; available: say@v1"),
    (23, 17, "malformed action 'say': write NAME@vN"),
    (25, 17, "callflow@v1: missing required parameter 'url'"),
    (25, 18, "callflow@v1 has no parameter 'targets'; it takes url, method, headers, timeout"),
    (28, 11, "say@v1 has no parameter 'txt' (did you mean 'text'?)"),
    (28, 11, "say@v1: missing required parameter 'text'"),
    (32, 23, "max_digits (2) is less than min_digits (4)"),
    (35, 20, "timeout: expected a number of seconds, got '5'"),
    (36, 25, "valid_digits: 'x' is not a DTMF key"),
    (37, 26, "finish_on_key: must be one of"),
    (38, 17, "result: invalid variable name 'digits'"),
    (41, 11, "set@v1: $digits is a read-only built-in variable"),
    (42, 16, "set@v1: $ok: invalid expression '1 +'"),
    (43, 11, "invalid assignment target 'bad-name'"),
    (46, 22, "condition: invalid expression '$ok >'"),
    (49, 31, "goto@v1: no label 'nowhere'"),
    (52, 33, "message: unterminated ${"),
    (55, 25, "label 'inner' (line 50) is inside another action list"),
    (56, 16, "duplicate label 'top' (first at line 53)"),
    (58, 17, "hangup@v1 has no result to store"),
    (59, 9, "unknown key 'colour' in an action item"),
    (61, 17, "play@v1: give exactly one of url or tone"),
    (63, 24, "tone: must be one of beep, ringback, busy, dial; got 'siren'"),
    (65, 36, "repeat: must be at least 1, got 0"),
    (67, 41, "stop_on_key: write DTMF keys as a quoted string"),
    (73, 13, "case '1' is the same value as case 1"),
    (77, 38, "prompt[1].say: voice: must be one of female, male"),
    (78, 15, "prompt[2]: unknown prompt item 'beep'"),
    (79, 22, "prompt[3]: pause: must be at least 0, got -2"),
    (80, 9, "an action item is a mapping with action: NAME@vN"),
    (81, 17, "log@v1: missing required parameter 'message'"),
    (82, 19, "on-error: expected a list of actions"),
    (85, 17, "answer@v1 needs a call, and the inbound-message branch has none"),
]


def problems_of(text: str, filename: str = "t.yaml") -> list[str]:
    with pytest.raises(ProblemsError) as caught:
        load_scenario_text(text, filename)
    return [str(problem) for problem in caught.value.problems]


def test_every_problem_of_a_bad_file_is_reported_at_its_place() -> None:
    path = DATA / "bad_scenario.yaml"
    with pytest.raises(ProblemsError) as caught:
        load_scenario(path)
    found = [(p.mark.line, p.mark.column, p.message) for p in caught.value.problems]
    assert len(found) == len(EXPECTED_PROBLEMS), "\n".join(map(str, caught.value.problems))
    for (line, column, message), (want_line, want_column, part) in zip(
        found, EXPECTED_PROBLEMS, strict=True
    ):
        assert (line, column) == (want_line, want_column), message
        assert part in message
    marked = {
        number
        for number, text in enumerate(path.read_text().splitlines(), start=1)
        if "# <-" in text
    }
    assert marked == {line for line, _, _ in found}
    assert all(str(p).startswith(f"{path}:") for p in caught.value.problems)


def test_check_files_reports_problems_of_each_file_in_order(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(scenario_text("- action: answer@v1"))
    bad = tmp_path / "bad.yaml"
    bad.write_text(scenario_text("- action: nope@v1"))
    missing = tmp_path / "missing.yaml"
    assert check_files([good]) == []
    problems = check_files([bad, good, missing])
    assert [p.file for p in problems] == [str(bad), str(missing)]
    assert "unknown action 'nope@v1'" in problems[0].message
    assert "cannot read file" in problems[1].message


def test_example_scenarios_are_valid() -> None:
    scenarios, problems = load_scenarios(CONFIGS)
    assert problems == []
    assert {"echo", "welcome", "ivr"} <= set(scenarios)
    for name, scenario in scenarios.items():
        assert scenario.name == name
        assert "inbound-call" in scenario.branches
    assert check_files(sorted(CONFIGS.glob("*.yaml"))) == []


def test_load_scenarios_collects_problems_and_keeps_valid_files(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(scenario_text("- action: answer@v1"))
    (tmp_path / "b.yml").write_text(scenario_text("- action: answer@v9"))
    (tmp_path / "a.yml").write_text(scenario_text("- action: answer@v1"))
    (tmp_path / "notes.txt").write_text("not a scenario")
    scenarios, problems = load_scenarios(tmp_path)
    assert list(scenarios) == ["a"]
    assert len(problems) == 2
    assert any("already defined" in p.message for p in problems)
    assert any("answer@v9 does not exist" in p.message for p in problems)
    assert load_scenarios(tmp_path / "nowhere")[1][0].message.startswith("cannot read folder")


def test_model_is_converted_and_immutable() -> None:
    scenario = load_scenario_text(
        scenario_text(
            """
            - action: gather@v1
              params:
                prompt:
                  - say: "Hello ${name}"
                  - play: {tone: beep}
                  - pause: 1
                timeout: 2
                max_digits: 4
              result: $pin
            - action: if@v1
              params:
                condition: "$pin == '1234'"
                then:
                  - action: log@v1
                    params: {message: ok}
            """,
            header="variables:\n  $name: Ada\ndefaults:\n  voice: male\n",
        ),
        "configs/demo.yaml",
    )
    assert isinstance(scenario, Scenario)
    assert scenario.name == "demo"
    assert scenario.defaults.voice == "male" and scenario.defaults.language == "en-US"
    assert dict(scenario.variables) == {"$name": "Ada"}
    gather, if_ = scenario.branches["inbound-call"].actions
    assert gather.key == "gather@v1" and gather.result == "$pin"
    assert gather.params["timeout"] == 2.0 and gather.params["inter_digit_timeout"] == 3.0
    say, play, pause = gather.params["prompt"]
    assert isinstance(say, PromptItem) and isinstance(say.text, Template)
    assert play.tone == "beep" and pause.seconds == 1.0
    assert isinstance(if_.params["condition"], Expression)
    (log,) = if_.params["then"]
    assert isinstance(log, ActionItem) and log.mark.line == 21  # 4 header lines + 3 + 14
    with pytest.raises(TypeError):
        gather.params["timeout"] = 3  # type: ignore[index]
    with pytest.raises(TypeError):
        scenario.branches["x"] = None  # type: ignore[index]


def test_name_must_match_file_name() -> None:
    text = "name: ivr\n" + scenario_text("- action: answer@v1")
    assert load_scenario_text(text, "somewhere/ivr.yaml").name == "ivr"
    assert "does not match" in problems_of(text, "other.yaml")[0]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "t.yaml:1:1: the file is empty"),
        ("- a\n- b\n", "a scenario is a mapping"),
        ("name: t\n", "missing branches:"),
        ("branches: [1]\n", "branches: expected a mapping"),
        ("branches:\n  inbound-call: {}\n", "inbound-call: missing actions:"),
        ("branches:\n  inbound-call:\n    actions: {}\n", "expected a list of actions"),
        ("branches:\n  inbound-call:\n    actions: []\n    extra: 1\n", "unknown key 'extra'"),
        ("branches:\n  inbound-call:\n    actions: [\n", "YAML syntax error"),
        ("a: 1\na: 2\nbranches: {}\n", "duplicate key 'a'"),
        ("variables: [1]\nbranches: {}\n", "variables: expected a mapping"),
        ("variables:\n  $x: .nan\nbranches: {}\n", "not a finite number"),
    ],
)
def test_document_structure_problems(text: str, message: str) -> None:
    assert any(message in problem for problem in problems_of(text))


@pytest.mark.parametrize(
    ("actions", "message"),
    [
        ("- {params: {}}", "missing action: NAME@vN"),
        ("- action: 42", "malformed action 42"),
        ("- action: Say@v1", "malformed action 'Say@v1'"),
        ("- {action: answer@v1, params: [1]}", "params: expected a mapping"),
        (
            "- {action: answer@v1, on_error: []}",
            "unknown key 'on_error' in an action item (did you mean on-error?)",
        ),
        ("- {action: answer@v1, label: '1 bad'}", "invalid label '1 bad'"),
        (
            "- {action: answer@v1, params: {ring: yes}}",
            "ring: expected a number of seconds, got true",
        ),
        ("- {action: hangup@v1, params: {reason: Normal}}", "is not a cause name"),
        ("- {action: reject@v1, params: {reason: nope}}", "must be one of busy, declined"),
        ("- {action: say@v1, params: {text: 5}}", "text: expected a string, got 5"),
        ("- {action: say@v1, params: {text: hi, rate: 9}}", "rate: must be at most 2.5"),
        ("- {action: say@v1, params: {text: hi, repeat: 1.5}}", "repeat: expected an integer"),
        ("- {action: say@v1, params: {text: hi, stop_on_key: '1e'}}", "'e' is not a DTMF key"),
        ("- {action: play@v1}", "give exactly one of url or tone"),
        ("- {action: play@v1, params: {url: '${'}}", "unterminated ${"),
        ("- {action: pause@v1}", "missing required parameter 'seconds'"),
        ("- {action: pause@v1, params: {seconds: '1s'}}", "expected a number of seconds"),
        ("- {action: echo@v1, params: {seconds: -3}}", "seconds: must be at least 0"),
        ("- {action: gather@v1, params: {max_digits: 0}}", "max_digits: must be at least 1"),
        ("- {action: gather@v1, params: {attempts: 0}}", "attempts: must be at least 1"),
        ("- {action: gather@v1, params: {inter_digit_timeout: -1}}", "must be at least 0"),
        ("- {action: gather@v1, params: {valid_digits: ''}}", "valid_digits: expected a string"),
        ("- {action: gather@v1, params: {prompt: hello}}", "prompt: expected a list of prompt"),
        ("- {action: gather@v1, params: {prompt: [{say: hi, play: x}]}}", "a prompt item is one"),
        ("- {action: gather@v1, params: {prompt: [{play: {}}]}}", "exactly one of url or tone"),
        (
            "- {action: gather@v1, params: {invalid_prompt: [{say: {txt: a}}]}}",
            "has no parameter 'txt'",
        ),
        ("- {action: set@v1}", "needs at least one $name: expression pair"),
        ("- {action: set@v1, params: {$a.: '1'}}", "invalid assignment target"),
        ("- {action: set@v1, params: {$now: '1'}}", "$now is a read-only built-in"),
        ("- {action: if@v1, params: {condition: 'true'}}", "missing required parameter 'then'"),
        ("- {action: if@v1, params: {condition: 'a b', then: []}}", "invalid expression 'a b'"),
        ("- {action: if@v1, params: {condition: '1); (2', then: []}}", "not a single expression"),
        ("- {action: if@v1, params: {condition: true, then: {}}}", "then: expected a list"),
        ("- {action: switch@v1, params: {value: $x, cases: []}}", "cases: expected a mapping"),
        ("- {action: goto@v1, params: {label: 3}}", "label: expected the label"),
        ("- {action: log@v1, params: {message: hi, level: loud}}", "must be one of debug, info"),
        ("- {action: gather@v1, result: $call}", "result: $call is a read-only built-in"),
    ],
)
def test_action_params_are_validated(actions: str, message: str) -> None:
    problems = problems_of(scenario_text(actions))
    assert any(message in problem for problem in problems), problems


def test_every_planned_action_says_not_available_yet(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every SPEC action is implemented today, so PLANNED is empty; the mechanism is
    # checked with a made-up planned action.
    assert frozenset() == PLANNED
    monkeypatch.setattr(registry, "PLANNED", frozenset({"shout"}))
    (problem,) = problems_of(scenario_text("- action: shout@v1"))
    assert problem.endswith("shout@v1 is not available in this version yet")
    (problem,) = problems_of(scenario_text("- action: shout@v2"))
    assert problem.endswith("shout@v2 does not exist")
    assert "shout" in registry.names()


def test_every_registered_action_is_documented() -> None:
    assert {
        "answer@v1",
        "progress@v1",
        "hangup@v1",
        "reject@v1",
        "say@v1",
        "play@v1",
        "pause@v1",
        "echo@v1",
        "gather@v1",
        "set@v1",
        "if@v1",
        "switch@v1",
        "goto@v1",
        "log@v1",
        "dial@v1",
        "send-dtmf@v1",
        "record@v1",
        "voicemail@v1",
        "conference@v1",
        "stop@v1",
        "queue@v1",
        "transfer@v1",
        "fork@v1",
        "foreach@v1",
        "fetch@v1",
        "webhook@v1",
        "message@v1",
        "detect@v1",
        "callflow@v1",
        "realtime@v1",
        "audio-file@v1",
    } == set(ACTIONS)
    for definition in ACTIONS.values():
        assert definition.summary
        assert definition.name not in PLANNED
        for param in definition.params:
            assert param.doc, f"{definition.key} {param.name}"


def test_goto_may_jump_out_to_enclosing_lists() -> None:
    load_scenario_text(
        scenario_text(
            """
            - label: start
              action: log@v1
              params: {message: top}
            - action: if@v1
              params:
                condition: "true"
                then:
                  - label: again
                    action: switch@v1
                    params:
                      value: "1"
                      cases:
                        1:
                          - {action: goto@v1, params: {label: again}}
                          - {action: goto@v1, params: {label: start}}
                  - {action: goto@v1, params: {label: again}}
              on-error:
                - {action: goto@v1, params: {label: start}}
            """
        ),
        "t.yaml",
    )


def test_goto_cannot_jump_into_a_sibling_or_nested_list() -> None:
    problems = problems_of(
        scenario_text(
            """
            - action: if@v1
              params:
                condition: "true"
                then:
                  - {label: inside, action: log@v1, params: {message: a}}
                else:
                  - {action: goto@v1, params: {label: inside}}
            """
        )
    )
    assert len(problems) == 1 and "inside another action list" in problems[0]


def test_labels_are_unique_per_branch_but_may_repeat_across_branches() -> None:
    text = (
        "branches:\n"
        "  inbound-call:\n    actions:\n      - {label: a, action: answer@v1}\n"
        "  api-initiated:\n    actions:\n      - {label: a, action: answer@v1}\n"
    )
    assert set(load_scenario_text(text, "t.yaml").branches) == {"inbound-call", "api-initiated"}


@pytest.mark.parametrize("written", ["inbound-sms", "inbound-message"])
def test_inbound_sms_branch_allows_call_free_actions(written: str) -> None:
    text = (
        f"branches:\n  {written}:\n    actions:\n"
        "      - {action: log@v1, params: {message: hi}}\n"
        "      - {action: set@v1, params: {$a: '1'}}\n"
        "      - {action: pause@v1, params: {seconds: 0}}\n"
        "      - {action: log@v1, params: {message: '${message.text}'}}\n"
    )
    # inbound-message, this server's first name for it, is the seed's inbound-sms.
    branch = load_scenario_text(text, "t.yaml").branches["inbound-sms"]
    assert branch.name == "inbound-sms" and len(branch.actions) == 4


def test_the_inbound_message_alias_names_itself_in_messages_and_cannot_double() -> None:
    refused = "branches:\n  inbound-message:\n    actions:\n      - {action: answer@v1}\n"
    assert problems_of(refused) == [
        "t.yaml:4:18: answer@v1 needs a call, and the inbound-message branch has none"
    ]
    both = (
        "branches:\n"
        "  inbound-sms:\n    actions:\n      - {action: log@v1, params: {message: a}}\n"
        "  inbound-message:\n    actions:\n      - {action: log@v1, params: {message: b}}\n"
    )
    assert problems_of(both) == [
        "t.yaml:5:3: inbound-sms and inbound-message are two names of one branch; keep one of them"
    ]
    assert problems_of("branches:\n  inbound-smss:\n    actions: []\n") == [
        "t.yaml:2:3: unknown branch 'inbound-smss' (did you mean inbound-sms?); branches are"
        " inbound-call, api-initiated, inbound-sms (inbound-message is another name for"
        " inbound-sms)"
    ]


def test_set_keeps_order_and_literals() -> None:
    scenario = load_scenario_text(
        scenario_text(
            """
            - action: set@v1
              params:
                $b: "1 + 1"
                $a: 5
                $list: [1, "x"]
                $obj.key: "'v'"
            """
        ),
        "t.yaml",
    )
    params = scenario.branches["inbound-call"].actions[0].params
    assert list(params) == ["$b", "$a", "$list", "$obj.key"]
    assert params["$a"] == Expression("5")
    assert params["$list"] == Expression('[1, "x"]')

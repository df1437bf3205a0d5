"""docs/scenarios.md stays true: generated tables, one section per action, valid examples.

- The generated blocks must equal what :mod:`mediaserver.actions.reference`
  renders from the registry now; when this fails, run
  ``python -m mediaserver.actions.reference --write docs/scenarios.md``.
- Every registered action has a ``### NAME@vN`` section with its generated
  block and at least one example using it.
- Every ```yaml example is a valid scenario (a list of action items is
  checked as the ``inbound-call`` actions of a scenario) and runs to its
  end against a fake call that presses no key.
- The example of ``mediaserver check`` output is what the command prints for
  the broken example before it.
"""

from __future__ import annotations

import asyncio
import re
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_runner_fakes import FakeCall, FakePrompts, FakeServer

from mediaserver import cli
from mediaserver.actions import reference, registry
from mediaserver.actions.params import Param, ParamType
from mediaserver.actions.runner import Run
from mediaserver.actions.scenario import Scenario, load_scenario_text
from mediaserver.yamlsource import ProblemsError

DOC = Path(__file__).parents[2] / "docs" / "scenarios.md"
TEXT = DOC.read_text(encoding="utf-8")
BROKEN = re.compile(r"^<!-- broken example: (?P<file>\S+) -->$")
FRAGMENT_HEADER = "branches:\n  inbound-call:\n    actions:\n"
FRAGMENT_INDENT = " " * 6
REFRESH = "python -m mediaserver.actions.reference --write docs/scenarios.md"
MESSAGE = {"from": "alice", "to": "sms", "text": "hello", "content_type": "text/plain"}
"""What ``$message`` holds in an ``inbound-sms`` run, as the server gives it."""


@dataclass(frozen=True)
class Fence:
    """One fenced code block of the document."""

    line: int
    """Line of the document where its content starts."""
    language: str
    text: str
    broken: str | None
    """The file name given by a ``<!-- broken example: FILE -->`` line just before it."""


def fences(text: str) -> list[Fence]:
    found: list[Fence] = []
    lines = text.splitlines()
    index = 0
    previous = ""
    while index < len(lines):
        line = lines[index]
        if line.startswith("```"):
            language = line[3:].strip()
            start = index + 1
            end = start
            while end < len(lines) and not lines[end].startswith("```"):
                end += 1
            match = BROKEN.match(previous)
            body = "\n".join(lines[start:end]) + "\n"
            found.append(Fence(start + 1, language, body, match.group("file") if match else None))
            index = end + 1
            previous = ""
            continue
        if line.strip():
            previous = line.strip()
        index += 1
    return found


FENCES = fences(TEXT)
EXAMPLES = [fence for fence in FENCES if fence.language == "yaml" and fence.broken is None]


def load_example(fence: Fence) -> Scenario:
    """The example as a scenario; a list of actions becomes an inbound-call branch."""
    data = yaml.safe_load(fence.text)
    text, lines, columns = fence.text, fence.line - 1, 0
    if isinstance(data, list):
        text = FRAGMENT_HEADER + textwrap.indent(fence.text, FRAGMENT_INDENT)
        lines -= FRAGMENT_HEADER.count("\n")
        columns = -len(FRAGMENT_INDENT)
    name = data.get("name", "example") if isinstance(data, dict) else "example"
    try:
        return load_scenario_text(text, f"{name}.yaml")
    except ProblemsError as exc:
        problems = exc.problems
    located = [
        f"docs/scenarios.md:{p.mark.line + lines}:{p.mark.column + columns}: {p.message}"
        for p in problems
    ]
    pytest.fail("invalid example:\n" + "\n".join(located))


def sections(text: str) -> dict[str, str]:
    """``### heading`` -> the text up to the next heading."""
    out: dict[str, str] = {}
    for match in re.finditer(r"^### (?P<title>.+)$", text, re.MULTILINE):
        rest = text[match.end() :]
        following = re.search(r"^#{1,3} ", rest, re.MULTILINE)
        out[match.group("title").strip()] = rest[: following.start() if following else None]
    return out


def github_anchor(heading: str) -> str:
    return re.sub(r"[^a-z0-9 _-]", "", heading.strip().lower()).replace(" ", "-")


# -- The document against the registry ------------------------------------------------------


def test_generated_blocks_are_up_to_date() -> None:
    problems = reference.problems(TEXT)
    assert not problems, "docs/scenarios.md is stale; run " + REFRESH + "\n" + "\n".join(problems)


@pytest.mark.parametrize("key", list(registry.ACTIONS))
def test_every_registered_action_has_a_section(key: str) -> None:
    section = sections(TEXT).get(key)
    assert section is not None, f"docs/scenarios.md has no '### {key}' section"
    assert reference.BEGIN.format(name=key) in section, f"the {key} section lacks its table"
    examples = [fence for fence in fences(section) if fence.language == "yaml"]
    assert any(f"action: {key}" in fence.text for fence in examples), (
        f"the {key} section has no example using it"
    )


def test_every_planned_action_is_listed_as_not_available() -> None:
    _, found, planned = TEXT.partition("\n## Not available yet\n")
    assert found, "docs/scenarios.md has no 'Not available yet' section"
    for name in registry.PLANNED:
        assert f"`{name}@v1`" in planned


def test_links_inside_the_document_lead_to_headings() -> None:
    headings = {
        github_anchor(match.group(1)) for match in re.finditer(r"^#{1,6} (.+)$", TEXT, re.MULTILINE)
    }
    targets = set(re.findall(r"\]\(#([^)]+)\)", TEXT))
    assert targets, "expected internal links"
    assert targets <= headings, f"links to missing headings: {sorted(targets - headings)}"


# -- The examples ---------------------------------------------------------------------------


def test_the_document_has_examples() -> None:
    assert len(EXAMPLES) >= len(registry.ACTIONS)


@pytest.mark.parametrize("fence", EXAMPLES, ids=[f"line{fence.line}" for fence in EXAMPLES])
def test_example_is_a_valid_scenario(fence: Fence) -> None:
    scenario = load_example(fence)
    assert [str(w) for w in scenario.warnings] == []  # e.g. a variable read but never set


@pytest.fixture
def instant_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make real waits (answer@v1 ring, pause before answer) take no time."""
    real_sleep = asyncio.sleep

    async def sleep(delay: float, result: Any = None) -> Any:
        await real_sleep(0)
        return result

    monkeypatch.setattr(asyncio, "sleep", sleep)


@pytest.mark.usefixtures("instant_sleep")
@pytest.mark.parametrize("fence", EXAMPLES, ids=[f"line{fence.line}" for fence in EXAMPLES])
async def test_example_runs_without_failing(fence: Fence) -> None:
    scenario = load_example(fence)
    for branch in scenario.branches:
        prompts = FakePrompts()
        call = None if branch == "inbound-sms" else FakeCall(prompts, hangup_at=3600)
        run = Run(
            scenario,
            branch,
            call=call,
            prompts=prompts,
            run_id=f"doc-{fence.line}",
            server=FakeServer(),
            variables={"$message": MESSAGE} if branch == "inbound-sms" else None,
        )
        outcome = await asyncio.wait_for(run.execute(), 10)
        assert outcome.status in ("completed", "hangup"), (
            f"example at docs/scenarios.md:{fence.line}, {branch}: {outcome.error}"
        )


def broken_examples() -> Iterator[tuple[Fence, Fence]]:
    for index, fence in enumerate(FENCES):
        if fence.broken is not None:
            yield fence, FENCES[index + 1]


def test_check_output_shown_is_what_the_command_prints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pairs = list(broken_examples())
    assert pairs, "expected a broken example followed by its check output"
    for broken, output in pairs:
        assert broken.broken is not None
        assert output.language == "text"
        (tmp_path / broken.broken).write_text(broken.text, encoding="utf-8")
        monkeypatch.chdir(tmp_path)
        assert cli.main(["check", broken.broken]) == 1
        assert capsys.readouterr().out == output.text


def test_the_unterminated_template_of_the_broken_example_is_reported_once_fixed() -> None:
    broken = next(fence for fence, _ in broken_examples())
    fixed = broken.text.replace("txt:", "text:")
    with pytest.raises(ProblemsError) as caught:
        load_scenario_text(fixed, "menu.yaml")
    message = (
        "say@v1: text: unterminated ${ at character 12: add the closing } "
        "(write \\${ for a literal ${)"
    )
    assert message in [problem.message for problem in caught.value.problems]
    assert message in " ".join(TEXT.split()), "the document quotes this message"


# -- The generator --------------------------------------------------------------------------

SMALL_DOC = """# Doc

<!-- BEGIN GENERATED: planned -->
stale
<!-- END GENERATED -->

text after
"""


def test_refresh_replaces_only_block_bodies() -> None:
    fresh = reference.refresh(SMALL_DOC)
    planned = reference.planned_list()
    assert fresh.startswith(f"# Doc\n\n<!-- BEGIN GENERATED: planned -->\n{planned}\n")
    assert "stale" not in fresh
    assert fresh.endswith("<!-- END GENERATED -->\n\ntext after\n")
    assert reference.refresh(fresh) == fresh


def test_the_planned_list_names_planned_actions_or_says_there_are_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert reference.planned_list() == "None: every action of the specification is available."
    monkeypatch.setattr(registry, "PLANNED", frozenset({"shout", "sing"}))
    assert reference.planned_list() == "`shout@v1`, `sing@v1`."


def test_problems_name_stale_missing_and_unknown_blocks() -> None:
    found = reference.problems(SMALL_DOC)
    assert found[0] == "line 3: block 'planned' is out of date with the registry"
    assert any("block 'say@v1' is missing" in problem for problem in found)
    unknown = SMALL_DOC.replace("planned", "shout@v1")
    assert reference.problems(unknown) == ["line 3: unknown generated block 'shout@v1'"]
    with pytest.raises(reference.ReferenceDocError, match="no END GENERATED"):
        reference.refresh(SMALL_DOC.replace("<!-- END GENERATED -->", ""))
    with pytest.raises(reference.ReferenceDocError, match="END GENERATED without a BEGIN"):
        reference.refresh("<!-- END GENERATED -->\n")


def test_command_line_write_and_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = tmp_path / "scenarios.md"
    doc.write_text(TEXT.replace("| `ring` |", "| `bell` |"), encoding="utf-8")
    assert reference.main(["--check", str(doc)]) == 1
    assert "block 'answer@v1' is out of date" in capsys.readouterr().err
    assert reference.main(["--write", str(doc)]) == 0
    assert doc.read_text(encoding="utf-8") == TEXT
    assert reference.main(["--check", str(doc)]) == 0
    assert reference.main(["--write", str(doc)]) == 0
    assert "up to date" in capsys.readouterr().out


def test_command_line_prints_blocks(capsys: pytest.CaptureFixture[str]) -> None:
    assert reference.main(["say@v1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("<!-- BEGIN GENERATED: say@v1 -->\n| param |")
    assert reference.main(["nothing@v9"]) == 2


def test_param_rendering() -> None:
    seconds = Param("wait", ParamType.SECONDS, "how | long", default=2.5, minimum=0, maximum=10)
    keys = Param("finish", ParamType.STRING, "key", default="#", choices=("1", "#", "none"))
    assert reference.params_table((seconds, keys)).splitlines()[2:] == [
        "| `wait` | a number of seconds, 0 to 10 | `2.5` | how \\| long |",
        '| `finish` | one of `1`, `#` or `none` | `"#"` | key |',
    ]
    required = Param("label", ParamType.LABEL, "where", required=True)
    assert reference.param_default(required) == "**required**"
    assert reference.param_default(Param("x", ParamType.KEYS, "keys")) == "—"
    assert [reference.yaml_literal(v) for v in ("info", "", "no", True, 3.0, ())] == [
        "info",
        '""',
        '"no"',
        "true",
        "3",
        "[]",
    ]

"""Every example of the seeds is accepted by our parsers, or is listed here with why not.

The Voxology seed's Call Flow answers (``seeds/003``, every JSON block that
is one, see :mod:`seed_examples`) are mapped (Template Mapping), parsed and
translated to native items as the loop does when an application answers
with them; the Callr seed's
scenario script (``seeds/001``, its five request and response samples hold
the same one) is loaded as a scenario. An example that is refused must be in
:data:`REFUSED` with the reason the parser gives, so the list stays true: a
fix that makes one pass fails here until its entry is removed.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from seed_examples import (
    CALLFLOW_FILE,
    CALLR_SCRIPT,
    CALLR_SCRIPT_AS_PRINTED,
    callflow_examples,
    load_callflow_examples,
    seed_file,
)

from mediaserver.actions.scenario import load_scenario_data, load_scenario_text
from mediaserver.callflow.actions import ResponseError, parse_response
from mediaserver.callflow.templates import map_templates
from mediaserver.callflow.translate import compile_plan
from mediaserver.yamlsource import ProblemsError

EXAMPLES = load_callflow_examples()

REFUSED = {
    # The seed itself: "The call flow will fail if the specified LABEL does not exist
    # within the same callback response"; the example is a GOTO alone.
    1003: "actions[0] (GOTO): params.label: LABEL 'goto_here' does not exist",
}
"""Seed line of the example: the first problem our parser reports (docs/callflow.md,
"Not supported, and why")."""


# The flattened callback request an answer replies to, as far as the examples read it
# (Template Mapping: "Example Template Mapping" reads the session data and duration).
REQUEST = {
    "type": "live_call",
    "caller_no": "+17145551212",
    "duration": "61000",
    "session_data.firstName": "Jill",
    "session_data.conferenceName": "my-conference",
}


def accept(answer: Any) -> None:
    """What the loop does with an application's answer, short of running it."""
    mapped = map_templates(answer, REQUEST)
    compile_plan(parse_response(mapped), "http://app.test/flow", load_scenario_data)


@pytest.mark.parametrize("example", EXAMPLES, ids=[f"line{e['line']}" for e in EXAMPLES])
def test_every_call_flow_example_of_the_voxology_seed_is_accepted(example: dict[str, Any]) -> None:
    line = example["line"]
    where = f"seeds/003 line {line}, {example['title']}"
    if line not in REFUSED:
        try:
            accept(example["json"])
        except ResponseError as exc:
            pytest.fail(f"{where} is refused: {exc.problems}")
        return
    with pytest.raises(ResponseError) as refused:
        accept(example["json"])
    assert refused.value.problems[0].startswith(REFUSED[line]), (where, refused.value.problems)


def test_the_refused_list_names_only_examples_of_the_seed() -> None:
    assert set(REFUSED) <= {e["line"] for e in EXAMPLES}
    assert len(EXAMPLES) == 39


def test_the_kept_examples_are_the_seed_s() -> None:
    seed = seed_file("003_")
    if seed is None:
        pytest.skip("seeds/003 is not beside this checkout")
    found = callflow_examples(seed.read_text(encoding="utf-8"))
    assert found == EXAMPLES, f"rebuild {CALLFLOW_FILE}: python tests/unit/seed_examples.py"


def test_the_callr_sample_script_is_a_scenario() -> None:
    assert re.sub(r" +", " ", CALLR_SCRIPT) == CALLR_SCRIPT_AS_PRINTED
    scenario = load_scenario_text(CALLR_SCRIPT, "call-forwarding.yaml")
    assert set(scenario.branches) == {"inbound-call", "inbound-sms", "api-initiated"}
    assert scenario.defaults.language == "en-US"
    with pytest.raises(ProblemsError, match="duplicate key 'actions'"):
        load_scenario_text(CALLR_SCRIPT_AS_PRINTED, "as-printed.yaml")


def test_every_script_of_the_callr_seed_is_the_sample() -> None:
    seed = seed_file("001_")
    if seed is None:
        pytest.skip("seeds/001 is not beside this checkout")
    scripts = re.findall(r'"script": ("(?:[^"\\]|\\.)*")', seed.read_text(encoding="utf-8"))
    assert len(scripts) == 5
    assert {json.loads(script) for script in scripts} == {CALLR_SCRIPT_AS_PRINTED}

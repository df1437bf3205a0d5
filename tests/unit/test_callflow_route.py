"""``callflow:URL`` routes as a one-action scenario, and ``callflow@v1`` in scenarios."""

from __future__ import annotations

import pytest
from test_callflow_fakes import FlowApp, use_call
from test_callflow_fakes import clock as clock  # the fixture
from test_runner_fakes import FakeCall, FakePrompts, scenario_text

from mediaserver.actions.expressions import Template
from mediaserver.actions.runner import Run
from mediaserver.actions.scenario import load_scenario_data, load_scenario_text
from mediaserver.callflow.route import callflow_scenario, route_url
from mediaserver.yamlsource import ProblemsError


def test_route_url() -> None:
    assert route_url("callflow:http://127.0.0.1:9000/flow") == "http://127.0.0.1:9000/flow"
    assert route_url("ivr") is None
    assert route_url("call-control:http://x") is None


def test_the_route_scenario_is_one_callflow_action_in_both_branches() -> None:
    scenario = callflow_scenario(load_scenario_data, "http://127.0.0.1:9000/flow")
    assert scenario.name == "callflow"
    assert scenario.file == "callflow:http://127.0.0.1:9000/flow"
    for branch in ("inbound-call", "api-initiated"):
        (item,) = scenario.branches[branch].actions
        assert item.key == "callflow@v1"
        url = item.params["url"]
        assert isinstance(url, Template) and url.constant == "http://127.0.0.1:9000/flow"
        assert (item.params["method"], item.params["timeout"]) == ("POST", 5.0)
    assert callflow_scenario(load_scenario_data, "http://127.0.0.1:9000/flow") is scenario  # cached


def test_a_template_marker_in_a_routed_url_stays_text() -> None:
    scenario = callflow_scenario(
        load_scenario_data, "http://h/flow?x=${nope}", "GET", (("X-K", "${k}"),), 2.0
    )
    (item,) = scenario.branches["inbound-call"].actions
    assert item.params["url"].constant == "http://h/flow?x=${nope}"
    assert item.params["headers"]["X-K"].constant == "${k}"
    assert (item.params["method"], item.params["timeout"]) == ("GET", 2.0)


@pytest.mark.usefixtures("clock")
async def test_the_route_scenario_runs_the_flow() -> None:
    app = FlowApp([{"type": "SAY", "params": {"text": "Hi"}}, {"type": "HANGUP"}])
    prompts = FakePrompts()
    call = use_call(FakeCall(prompts))
    run = Run(
        callflow_scenario(load_scenario_data, "http://app.test/flow"),
        "inbound-call",
        call=call,
        prompts=prompts,
        run_id="inbound-call:call0001",
        server=app,
    )
    outcome = await run.execute()
    assert outcome.status == "completed"
    assert call.heard() == ["say:Hi"]
    assert app.types() == ["init_call", "end_call"]
    assert [r.url for r in app.requests] == ["http://app.test/flow"] * 2


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ("{}", "callflow@v1: missing required parameter 'url'"),
        ("{url: 'ftp://x'}", "url: 'ftp://x' is not an http:// or https:// URL"),
        ("{url: 'http://x', method: DELETE}", "method: must be one of POST, GET, PUT"),
        ("{url: 'http://x', timeout: 30}", "timeout: must be at most 15, got 30"),
        ("{url: 'http://x', headers: {'a b': c}}", "headers: 'a b' is not a header name"),
    ],
)
def test_callflow_params_are_checked_with_the_scenario(params: str, message: str) -> None:
    with pytest.raises(ProblemsError) as caught:
        load_scenario_text(scenario_text(f"- action: callflow@v1\n  params: {params}"), "t.yaml")
    assert any(message in p.message for p in caught.value.problems), caught.value.problems


def test_callflow_has_no_result_and_needs_a_call() -> None:
    with pytest.raises(ProblemsError) as caught:
        load_scenario_text(
            scenario_text("- {action: callflow@v1, params: {url: 'http://x'}, result: $r}"),
            "t.yaml",
        )
    assert "callflow@v1 has no result to store" in str(caught.value)
    text = scenario_text(
        "- {action: callflow@v1, params: {url: 'http://x'}}", branch="inbound-message"
    )
    with pytest.raises(ProblemsError, match="needs a call"):
        load_scenario_text(text, "t.yaml")

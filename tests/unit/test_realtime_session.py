"""A REALTIME10 dialogue against a fake call and a fake application."""

from __future__ import annotations

from typing import Any, cast

from test_runner_fakes import FakeServer, run_actions

from mediaserver.actions.callapi import FetchResult

URL = "http://rt.test/app"
ACTION = f"- action: realtime@v1\n  params: {{url: '{URL}', login: u, password: p}}"


class ScriptedApp(FakeServer):
    """Answers each RT.Request with the next response of its script (the last one again)."""

    def __init__(self, *script: Any) -> None:
        super().__init__()
        self.script = list(script)
        self.status = 200

    async def fetch(
        self, url: str, *, method: str, headers: Any, body: object, timeout: float
    ) -> FetchResult:
        await super().fetch(url, method=method, headers=headers, body=body, timeout=timeout)
        answer = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        return FetchResult(self.status, answer, {"content-type": "application/json"})

    def bodies(self) -> list[dict[str, Any]]:
        return [cast(dict[str, Any], request.body) for request in self.requests]


async def test_commands_run_in_turn_and_report_their_results() -> None:
    app = ScriptedApp(
        {"command": "say", "command_id": 1, "params": {"text": "Hi"}, "variables": {"a": 1}},
        {"command": "read", "command_id": 2, "params": {"max_digits": 1}},
        {"command": "hangup"},
    )
    outcome, call, _ = await run_actions(ACTION, server=app, keys="7", keys_at=0.5)
    assert outcome.status == "completed"
    assert call.heard() == ["say:Hi"]
    first, after_say, after_read, last = app.bodies()
    assert first["call_status"] == "UP" and first["command"] == ""
    assert (after_say["command"], after_say["command_id"], after_say["variables"]) == (
        "say",
        1,
        {"a": 1},
    )
    assert (after_read["command"], after_read["command_result"]) == ("read", "7")
    assert after_read["variables"] == {}  # the read's response sent none
    assert last["call_status"] == "HANGUP" and last["command"] == "hangup"
    assert app.requests[0].headers["Authorization"] == "Basic dTpw"  # u:p


async def test_three_invalid_responses_in_a_row_hang_up() -> None:
    app = ScriptedApp({"command": "dance", "command_id": "d"})
    outcome, call, _ = await run_actions(ACTION, server=app)
    assert outcome.status == "failed" and "3 invalid RT.Responses in a row" in str(outcome.error)
    assert call.ended
    bodies = app.bodies()
    assert [b["call_status"] for b in bodies] == ["UP", "UP", "UP", "HANGUP"]
    assert "'dance' is not a command" in bodies[1]["command_error"]
    assert bodies[1]["command_id"] == "d"


async def test_a_non_2xx_answer_hangs_up() -> None:
    app = ScriptedApp({"command": "say", "params": {"text": "never"}})
    app.status = 503
    outcome, call, _ = await run_actions(ACTION, server=app)
    assert outcome.status == "failed" and f"POST {URL} answered 503" in str(outcome.error)
    assert call.ended and call.heard() == []
    assert [b["call_status"] for b in app.bodies()] == ["UP", "HANGUP"]


async def test_the_cdr_field_is_the_runs_customer_field() -> None:
    """REALTIME10.Call.Options ``cdr_field``: the start variable of an API-started call."""
    app = ScriptedApp({"command": "hangup"})
    await run_actions(ACTION, server=app, variables={"$customer_field": "order-42"})
    assert {body["cdr_field"] for body in app.bodies()} == {"order-42"}
    plain = ScriptedApp({"command": "hangup"})
    await run_actions(ACTION, server=plain)
    assert {body["cdr_field"] for body in plain.bodies()} == {""}

"""A scripted Call Flow application for the callflow tests, and its own tests.

:class:`FlowApp` is a :class:`FakeServer` whose ``fetch`` plays the
application's URL: each ``init_call``/``live_call`` request takes the next
answer of its script (a JSON value is a 200 JSON answer; an int a status
with no body; a :class:`FetchResult` or :class:`FetchError` as is; a float
a number of seconds to hang), ``end_call``/``failed_call`` and WEBHOOK
requests answer ``200 {}`` (or ``webhook_answer``). It keeps every request.

:func:`run_flow` runs a one-action scenario (``callflow@v1`` on
:data:`URL`, or the given YAML) against a :class:`FakeCall` on a virtual
clock, with request times taken from the same clock.

(Named ``test_*`` like ``test_runner_fakes`` so that it belongs with the
tests; the callflow test modules import it.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pytest
from test_runner_fakes import FakeCall, FakePrompts, FakeRequest, FakeServer, run_actions

from mediaserver.actions.callapi import FetchError, FetchResult
from mediaserver.actions.model import Scenario
from mediaserver.actions.runner import Run, RunOutcome
from mediaserver.callflow import loop

URL = "http://app.test/flow"
FLOW = f"- action: callflow@v1\n  params: {{url: '{URL}'}}"
EPOCH = 1_700_000_000.0
"""FakeCall.info's started_at, in seconds: virtual time 0."""

Answer = Any


def json_answer(body: Any, status: int = 200) -> FetchResult:
    return FetchResult(status, body, {"content-type": "application/json"})


class FlowApp(FakeServer):
    """The application's URL, answering from a script (see the module docstring)."""

    def __init__(self, *script: Answer) -> None:
        super().__init__()
        self.script = list(script)
        self.webhook_answer: Answer = {}
        self.started: list[dict[str, Any]] = []
        self.start_error: str | None = None

    async def fetch(
        self,
        url: str,
        *,
        method: str,
        headers: Mapping[str, str],
        body: object,
        timeout: float,
    ) -> FetchResult:
        self.requests.append(FakeRequest(url, method, dict(headers), body, timeout))
        kind = _kind(url, body)
        if kind in ("end_call", "failed_call"):
            answer: Answer = {}
        elif _is_webhook(url, body):
            answer = self.webhook_answer
        elif self.script:
            answer = self.script.pop(0)
        else:
            raise AssertionError(f"no answer left for {kind} {url}")
        await asyncio.sleep(0)
        if isinstance(answer, FetchError):
            raise answer
        if isinstance(answer, FetchResult):
            return answer
        if isinstance(answer, float):
            await asyncio.sleep(answer)
            raise AssertionError("the loop should have given up before")
        if isinstance(answer, int) and not isinstance(answer, bool):
            return FetchResult(answer, "", {})
        return json_answer(answer)

    async def start_call(
        self,
        to: str,
        scenario: Scenario,
        *,
        caller_id: str | None,
        variables: Mapping[str, object],
        timeout: float,
    ) -> str:
        await asyncio.sleep(0)
        if self.start_error is not None:
            raise ValueError(self.start_error)
        self.started.append(
            {
                "to": to,
                "scenario": scenario,
                "caller_id": caller_id,
                "variables": dict(variables),
                "timeout": timeout,
            }
        )
        return f"api:dial{len(self.started)}"

    # -- what the tests read --

    def bodies(self, kind: str | None = None) -> list[dict[str, Any]]:
        """The JSON bodies (or query strings as dicts) of the requests, in order."""
        out = []
        for request in self.requests:
            body = request.body if isinstance(request.body, dict) else _query(request.url)
            if kind is None or body.get("type") == kind:
                out.append(body)
        return out

    def types(self) -> list[str]:
        """``init_call``, ``live_call``, ``webhook:NAME``, ``end_call``... in order."""
        out = []
        for body in self.bodies():
            if body.get("is_webhook") in (True, "true"):
                out.append(f"webhook:{body.get('event_name')}")
            else:
                out.append(str(body.get("type")))
        return out


def _query(url: str) -> dict[str, Any]:
    from urllib.parse import parse_qsl, urlsplit

    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


def _kind(url: str, body: object) -> str:
    return str((body if isinstance(body, dict) else _query(url)).get("type"))


def _is_webhook(url: str, body: object) -> bool:
    value = (body if isinstance(body, dict) else _query(url)).get("is_webhook")
    return value in (True, "true")


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Request times follow the fake call's virtual clock (see :func:`run_flow`)."""
    monkeypatch.setattr(loop, "wall_clock", lambda: EPOCH + _current_call[0].now)


_current_call: list[FakeCall] = [FakeCall(FakePrompts())]


def use_call(call: FakeCall) -> FakeCall:
    """Make ``call``'s virtual clock the requests' clock (with the ``clock`` fixture)."""
    _current_call[0] = call
    return call


async def run_flow(
    *script: Answer,
    app: FlowApp | None = None,
    actions: str = FLOW,
    keys: str = "",
    keys_at: float = 0.0,
    key_gap: float = 0.0,
    call: FakeCall | None = None,
    variables: dict[str, Any] | None = None,
) -> tuple[RunOutcome, FakeCall, FlowApp, Run]:
    """Run ``actions`` (callflow@v1 on :data:`URL` by default) against ``script``."""
    app = app or FlowApp(*script)
    call = use_call(call or FakeCall(FakePrompts()))
    outcome, call, run = await run_actions(
        actions,
        keys=keys,
        keys_at=keys_at,
        key_gap=key_gap,
        call=call,
        server=app,
        variables=variables,
    )
    return outcome, call, app, run


# -- tests of the fakes ------------------------------------------------------------------------


async def test_the_app_answers_from_its_script_and_keeps_requests() -> None:
    app = FlowApp({"actions": []}, 500)
    first = await app.fetch(URL, method="POST", headers={}, body={"type": "init_call"}, timeout=1)
    assert first.status == 200 and first.body == {"actions": []}
    second = await app.fetch(URL, method="POST", headers={}, body={"type": "live_call"}, timeout=1)
    assert second.status == 500
    end = await app.fetch(URL, method="POST", headers={}, body={"type": "end_call"}, timeout=1)
    assert end.status == 200
    assert app.types() == ["init_call", "live_call", "end_call"]


async def test_the_app_reads_get_requests_from_their_query_string() -> None:
    app = FlowApp({"actions": []})
    await app.fetch(
        f"{URL}?type=init_call&call_id=c1", method="GET", headers={}, body=None, timeout=1
    )
    assert app.bodies() == [{"type": "init_call", "call_id": "c1"}]

"""fetch, webhook and message: the actions that ask the server, against a fake ServerApi."""

from __future__ import annotations

from typing import Any

import pytest
from structlog.testing import capture_logs
from test_runner_fakes import FakePrompts, FakeServer, run_actions, scenario_text

from mediaserver.actions.callapi import FetchError, FetchResult
from mediaserver.actions.runner import Run
from mediaserver.actions.scenario import load_scenario_text
from mediaserver.yamlsource import ProblemsError


def problems(actions: str, branch: str = "inbound-call") -> list[str]:
    try:
        load_scenario_text(scenario_text(actions, branch=branch), "t.yaml")
    except ProblemsError as exc:
        return [problem.message for problem in exc.problems]
    return []


async def run_offline(
    actions: str, server: FakeServer, variables: dict[str, Any] | None = None
) -> Any:
    """Run an inbound-sms branch: no call, like the server does for a SIP MESSAGE."""
    scenario = load_scenario_text(scenario_text(actions, branch="inbound-message"), "m.yaml")
    run = Run(
        scenario,
        "inbound-sms",
        call=None,
        prompts=FakePrompts(),
        run_id="inbound-sms:m1",
        server=server,
        variables=variables,
    )
    return await run.execute()


JSON = {"Content-Type": "application/json"}


# -- fetch@v1 ------------------------------------------------------------------------------


async def test_fetch_get_with_interpolation_and_a_json_result() -> None:
    server = FakeServer()
    url = "http://crm.test/customers?phone=%2B33123456789"
    server.responses[url] = FetchResult(200, {"name": "Alice", "vip": True}, JSON)
    outcome, call, _ = await run_actions(
        """
        - action: fetch@v1
          params:
            url: "http://crm.test/customers?phone=${encodeURIComponent(call.from)}"
            headers: {Authorization: "Bearer ${token}", X-Count: 3}
          result: $customer
        - action: say@v1
          params: {text: "Hello ${customer.body.name}, status ${customer.status}."}
        """,
        server=server,
        variables={"$token": "t0k"},
    )
    assert outcome.status == "completed", outcome.error
    (request,) = server.requests
    assert (request.url, request.method, request.body, request.timeout) == (url, "GET", None, 5.0)
    assert request.headers == {"Authorization": "Bearer t0k", "X-Count": "3"}
    assert outcome.variables["$customer"] == {
        "status": 200,
        "body": {"name": "Alice", "vip": True},
        "headers": {"content-type": "application/json"},
    }
    assert call.heard() == ["say:Hello Alice, status 200."]


async def test_fetch_body_is_rendered_with_types_kept_for_whole_fields() -> None:
    server = FakeServer()
    outcome, _, _ = await run_actions(
        """
        - action: fetch@v1
          params:
            url: http://hooks.test/order
            method: POST
            body:
              caller: "${call.from}"
              text: "order ${order.id} for ${order.qty}"
              qty: "${order.qty}"
              order: "${$order}"
              missing: "${order.nothing}"
              spelled: "${...order.id}"
              literal: [1, true, null, 2.5]
              nested: {list: ["${order.qty * 2}", "x"]}
        """,
        server=server,
        variables={"$order": {"id": "A7", "qty": 3}},
    )
    assert outcome.status == "completed", outcome.error
    assert server.requests[0].method == "POST"
    assert server.requests[0].body == {
        "caller": "+33123456789",
        "text": "order A7 for 3",
        "qty": 3,
        "order": {"id": "A7", "qty": 3},
        "missing": None,
        "spelled": "A 7",
        "literal": [1, True, None, 2.5],
        "nested": {"list": [6, "x"]},
    }


async def test_fetch_body_may_be_a_plain_string_or_number() -> None:
    server = FakeServer()
    outcome, _, _ = await run_actions(
        """
        - {action: fetch@v1, params: {url: "http://a.test/1", method: PUT, body: "hi ${x}"}}
        - {action: fetch@v1, params: {url: "http://a.test/2", method: PATCH, body: 42}}
        """,
        server=server,
        variables={"$x": 1},
    )
    assert outcome.status == "completed", outcome.error
    assert [r.body for r in server.requests] == ["hi 1", 42]


async def test_a_content_type_header_is_written_one_way() -> None:
    server = FakeServer()
    outcome, _, _ = await run_actions(
        """
        - action: fetch@v1
          params: {url: "http://a.test/", method: PUT, body: "x", headers: {content-type: text/csv}}
        """,
        server=server,
    )
    assert outcome.status == "completed", outcome.error
    assert server.requests[0].headers == {"Content-Type": "text/csv"}


async def test_a_server_error_status_is_a_result_not_a_failure() -> None:
    server = FakeServer()
    server.responses["http://api.test/x"] = FetchResult(500, "oops", {"Content-Type": "text/plain"})
    outcome, call, _ = await run_actions(
        """
        - action: fetch@v1
          params: {url: "http://api.test/x"}
          result: $r
          on-error:
            - {action: say@v1, params: {text: "on-error"}}
        - action: if@v1
          params:
            condition: "$r.status >= 500"
            then: [{action: say@v1, params: {text: "server error ${r.body}"}}]
        """,
        server=server,
    )
    assert outcome.status == "completed"
    assert call.heard() == ["say:server error oops"]


async def test_a_transport_failure_runs_on_error_with_the_reason_logged() -> None:
    server = FakeServer()
    server.responses["http://dead.test/"] = FetchError("http://dead.test/: ConnectError: refused")
    with capture_logs() as logs:
        outcome, call, _ = await run_actions(
            """
            - action: set@v1
              params: {$r: "null"}
            - action: fetch@v1
              params: {url: "http://dead.test/"}
              result: $r
              on-error:
                - {action: say@v1, params: {text: "The service is not available."}}
            - {action: say@v1, params: {text: "after"}}
            """,
            server=server,
        )
    assert outcome.status == "completed"
    assert outcome.variables["$r"] is None  # a failed action stores no result
    assert call.heard() == ["say:The service is not available.", "say:after"]
    (failed,) = [e for e in logs if e["event"] == "action failed, running its on-error"]
    assert failed["error"] == (
        "fetch@v1 at test.yaml:6: GET http://dead.test/: http://dead.test/: ConnectError: refused"
    )


async def test_a_transport_failure_without_on_error_fails_the_run() -> None:
    server = FakeServer()
    server.responses["http://dead.test/"] = FetchError("refused")
    outcome, _, _ = await run_actions(
        "- {action: fetch@v1, params: {url: 'http://dead.test/'}}", server=server
    )
    assert outcome.status == "failed"
    assert outcome.error == "fetch@v1 at test.yaml:4: GET http://dead.test/: refused"


async def test_the_timeout_bounds_the_whole_request() -> None:
    server = FakeServer()
    server.responses["http://slow.test/"] = 30.0
    outcome, _, _ = await run_actions(
        "- {action: fetch@v1, params: {url: 'http://slow.test/', timeout: 0.5}}", server=server
    )
    assert outcome.status == "failed"
    assert outcome.error == (
        "fetch@v1 at test.yaml:4: GET http://slow.test/: no response within 0.5 s"
    )


async def test_fetch_without_a_server_fails() -> None:
    outcome, _, _ = await run_actions("- {action: fetch@v1, params: {url: 'http://a.test/'}}")
    assert outcome.status == "failed"
    assert "fetch@v1 needs the server" in str(outcome.error)


async def test_fetch_in_a_run_without_a_call() -> None:
    server = FakeServer()
    server.responses["http://a.test/sms"] = FetchResult(201, {"id": 7}, JSON)
    outcome = await run_offline(
        """
        - action: fetch@v1
          params: {url: "http://a.test/sms", method: POST, body: {text: "${message.text}"}}
          result: $r
        """,
        server,
        {"$message": {"from": "alice", "text": "hi"}},
    )
    assert outcome.status == "completed", outcome.error
    assert outcome.variables["$r"]["body"] == {"id": 7}
    assert server.requests[0].body == {"text": "hi"}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ("{}", "fetch@v1: missing required parameter 'url'"),
        ("{url: 'ftp://x/'}", "fetch@v1: url: 'ftp://x/' is not an http:// or https:// URL"),
        ("{url: 'http://x/', methd: GET}", "fetch@v1 has no parameter 'methd' (did you mean"),
        ("{url: 'http://x/', method: FETCH}", "fetch@v1: method: must be one of GET, POST"),
        ("{url: 'http://x/', timeout: 0}", "fetch@v1: timeout: must be at least 0.5, got 0"),
        ("{url: 'http://x/', timeout: 61}", "fetch@v1: timeout: must be at most 60, got 61"),
        ("{url: 'http://x/', timeout: '5'}", "fetch@v1: timeout: expected a number of seconds"),
        ("{url: 'http://x/', headers: {'a b': c}}", "fetch@v1: headers: 'a b' is not a header"),
        ("{url: 'http://x/', body: {a: 1}}", "fetch@v1: a GET request has no body; use POST"),
        (
            "{url: 'http://x/', method: POST, body: {a: ['${x']}}",
            "fetch@v1: body.a[0]: unterminated ${",
        ),
        ("{url: 'http://x/${'}", "fetch@v1: url: unterminated ${"),
    ],
)
def test_fetch_params_are_checked(params: str, message: str) -> None:
    found = problems(f"- {{action: fetch@v1, params: {params}}}")
    assert any(p.startswith(message) for p in found), found


def test_fetch_takes_an_interpolated_url_and_runs_without_a_call() -> None:
    assert problems("- {action: fetch@v1, params: {url: '${base}/x'}}") == []
    assert problems("- {action: fetch@v1, params: {url: 'HTTPS://X/'}}") == []
    assert problems("- {action: fetch@v1, params: {url: 'http://x/'}}", "inbound-message") == []


# -- webhook@v1 ----------------------------------------------------------------------------


async def test_webhook_goes_to_the_configured_webhooks_by_default() -> None:
    server = FakeServer()
    outcome, _, _ = await run_actions(
        """
        - action: webhook@v1
          params: {data: {answer: "${answer}", tries: "${tries}"}}
        - {action: say@v1, params: {text: "done"}}
        """,
        server=server,
        variables={"$answer": "confirmed", "$tries": 2},
    )
    assert outcome.status == "completed", outcome.error
    assert server.webhooks == [
        (
            None,
            "v2.scenario.event",
            {
                "scenario": "test",
                "runid": "run-test",
                "branch": "inbound-call",
                "callid": "call0001",
                "from": "+33123456789",
                "to": "ivr",
                "data": {"answer": "confirmed", "tries": 2},
            },
        )
    ]


async def test_webhook_to_a_url_with_its_own_event_and_any_data() -> None:
    server = FakeServer()
    outcome = await run_offline(
        """
        - action: webhook@v1
          params:
            url: "http://hooks.test/${message.to}"
            event: v2.scenario.sms-received
            data: "${$message}"
        """,
        server,
        {"$message": {"from": "alice", "to": "sms", "text": "hi"}},
    )
    assert outcome.status == "completed", outcome.error
    ((url, event, payload),) = server.webhooks
    assert (url, event) == ("http://hooks.test/sms", "v2.scenario.sms-received")
    assert payload["data"] == {"from": "alice", "to": "sms", "text": "hi"}
    assert payload["callid"] is None and payload["branch"] == "inbound-sms"


async def test_webhook_url_that_is_not_http_after_interpolation_fails() -> None:
    server = FakeServer()
    outcome, _, _ = await run_actions(
        "- {action: webhook@v1, params: {url: '${target}'}}",
        server=server,
        variables={"$target": "mailto:x@y"},
    )
    assert outcome.status == "failed"
    assert "url: 'mailto:x@y' is not an http:// or https:// URL" in str(outcome.error)
    assert server.webhooks == []


async def test_a_failing_data_field_is_named_as_written() -> None:
    outcome, _, _ = await run_actions(
        "- {action: webhook@v1, params: {data: {a: '${nope.x}'}}}", server=FakeServer()
    )
    assert outcome.status == "failed"
    assert outcome.error == (
        "webhook@v1 at test.yaml:4: expression '${nope.x}' failed: "
        "ReferenceError: 'nope' is not defined"
    )


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ("{event: v2.call.inbound.started}", "webhook@v1: event: 'v2.call.inbound.started' is not"),
        ("{event: v2.recording.updated}", "webhook@v1: event: 'v2.recording.updated' is not"),
        ("{event: v2.audio-file.updated}", "webhook@v1: event: 'v2.audio-file.updated' is not"),
        ("{event: call.hangup}", "webhook@v1: event: 'call.hangup' is not an event type"),
        ("{event: 'v2.a b'}", "webhook@v1: event: 'v2.a b' is not"),
        ("{url: 'file:///etc'}", "webhook@v1: url: 'file:///etc' is not an http"),
        ("{data: {a: '${'}}", "webhook@v1: data.a: unterminated ${"),
        ("{evnt: v2.x}", "webhook@v1 has no parameter 'evnt' (did you mean 'event'?)"),
    ],
)
def test_webhook_params_are_checked(params: str, message: str) -> None:
    found = problems(f"- {{action: webhook@v1, params: {params}}}")
    assert any(p.startswith(message) for p in found), found


def test_webhook_accepts_native_event_names_and_any_data() -> None:
    for params in ("{}", "{event: v2.scenario.reminder}", "{event: v2.acme.order_paid-2}",
                   "{data: [1, 2]}", "{data: 'text'}", "{data: null}"):  # fmt: skip
        assert problems(f"- {{action: webhook@v1, params: {params}}}") == [], params


# -- message@v1 ----------------------------------------------------------------------------


async def test_message_is_sent_and_its_status_is_the_result() -> None:
    server = FakeServer()
    outcome = await run_offline(
        """
        - action: message@v1
          params: {to: "${message.from}", text: "You said: ${message.text}", from: "${message.to}"}
          result: $sent
        """,
        server,
        {"$message": {"from": "alice", "to": "sms", "text": "hi"}},
    )
    assert outcome.status == "completed", outcome.error
    assert server.messages == [("alice", "You said: hi", "sms")]
    assert outcome.variables["$sent"] == {"status": 200, "delivered": True}


@pytest.mark.parametrize(("status", "delivered"), [(404, False), (None, False), (202, True)])
async def test_a_refused_or_unanswered_message_is_a_result(
    status: int | None, delivered: bool
) -> None:
    server = FakeServer()
    server.message_status["bob"] = status
    outcome, _, _ = await run_actions(
        "- {action: message@v1, params: {to: bob, text: hi}, result: $sent}", server=server
    )
    assert outcome.status == "completed"
    assert outcome.variables["$sent"] == {"status": status, "delivered": delivered}
    assert server.messages == [("bob", "hi", None)]


async def test_message_to_nowhere_fails_into_on_error() -> None:
    server = FakeServer()
    outcome, call, _ = await run_actions(
        """
        - action: message@v1
          params: {to: unknown-user, text: hi}
          on-error: [{action: say@v1, params: {text: "not sent"}}]
        """,
        server=server,
    )
    assert outcome.status == "completed"
    assert call.heard() == ["say:not sent"]


@pytest.mark.parametrize(
    ("params", "variables", "error"),
    [
        ("{to: bob, text: '${t}'}", {"$t": "x" * 1025}, "text: 1025 bytes is over the 1024"),
        ("{to: bob, text: hi, from: '${f}'}", {"$f": "a b>"}, "from: 'a b>' is not a SIP user"),
        ("{to: '${t}', text: hi}", {"$t": " "}, "to: the recipient is empty"),
    ],
)
async def test_message_refuses_what_cannot_be_sent(
    params: str, variables: dict[str, Any], error: str
) -> None:
    server = FakeServer()
    outcome, _, _ = await run_actions(
        f"- {{action: message@v1, params: {params}}}", server=server, variables=variables
    )
    assert outcome.status == "failed"
    assert error in str(outcome.error)
    assert server.messages == []


def test_message_params_are_checked() -> None:
    assert problems("- {action: message@v1, params: {to: bob}}") == [
        "message@v1: missing required parameter 'text'"
    ]
    assert "message@v1 has no parameter 'txt' (did you mean 'text'?)" in problems(
        "- {action: message@v1, params: {to: bob, txt: hi}}"
    )
    assert problems("- {action: message@v1, params: {to: bob, text: [a]}}") == [
        "message@v1: text: expected a string, got a list"
    ]
    assert problems("- {action: message@v1, params: {to: bob, text: hi}}", "inbound-message") == []

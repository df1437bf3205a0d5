"""Fuzzing the HTTP API's bodies on a started server: never a 5xx, always a JSON error.

Every operation that takes a body gets mutated valid bodies, random JSON,
and bytes that are not JSON at all. Nothing generated can make the server
reach beyond 127.0.0.1: runs are started only on a file scenario without an
``api-initiated`` branch (refused before anything is dialled), webhook
endpoints are forced to a closed loopback port, and the scenarios created
are never routed.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
from hypothesis import strategies as st

from tests.fuzz.targets import YAML_SEEDS, YAML_TOKENS, Target, json_values, mutated, text_of
from tests.integration.conftest import ServerProcess

LOOPBACK_HOOK = "http://127.0.0.1:9/fuzz"  # discard port: nothing listens, nothing leaves

scripts = text_of(mutated(YAML_SEEDS, YAML_TOKENS))


@st.composite
def _bodies(draw: st.DrawFn, valid: dict[str, Any], fields: dict[str, Any]) -> Any:
    """A valid body with fields dropped, replaced or added, or any JSON value."""
    if draw(st.integers(0, 4)) == 0:
        return draw(json_values)
    body = dict(valid)
    for key in list(body):
        if draw(st.integers(0, 3)) == 0:
            del body[key]
    for key, strategy in fields.items():
        if draw(st.booleans()):
            body[key] = draw(st.one_of(strategy, json_values))
    if draw(st.integers(0, 5)) == 0:
        body[draw(st.text(max_size=8))] = draw(json_values)
    return body


OPERATIONS: dict[str, tuple[str, str, st.SearchStrategy[Any]]] = {
    "create-scenario": (
        "POST", "/api/scenarios",
        _bodies({"name": "fuzzed", "script": YAML_SEEDS[0].decode()},
                {"name": st.text(max_size=70), "script": scripts, "format": st.text(max_size=5)}),
    ),
    "replace-scenario": (
        "PUT", "/api/scenarios/{sid}",
        _bodies({"name": "fuzzed-put", "script": YAML_SEEDS[1].decode()},
                {"name": st.text(max_size=70), "script": scripts}),
    ),
    "update-scenario": (
        "PATCH", "/api/scenarios/{sid}",
        _bodies({"script": YAML_SEEDS[2].decode()},
                {"name": st.text(max_size=70), "script": scripts}),
    ),
    "start-run": (
        "POST", "/api/scenarios/{file_sid}/start",
        _bodies({"variables": {"$a": 1}}, {"to": st.text(max_size=40), "variables": json_values}),
    ),
    "inject-actions": (
        "POST", "/api/calls/nosuchcall/actions",
        _bodies({"actions": [{"action": "say@v1", "params": {"text": "hi"}}]},
                {"actions": st.lists(json_values, max_size=3)}),
    ),
    "update-recording": (
        "PATCH", "/api/recordings/nosuchrc", _bodies({"read": True}, {"read": json_values}),
    ),
    "create-webhook": (
        "POST", "/api/webhooks",
        _bodies({"endpoint": LOOPBACK_HOOK, "events": ["v2.call.*"], "status": "disabled"},
                {"events": st.lists(st.text(max_size=12), max_size=3), "secret": json_values,
                 "status": st.sampled_from(["enabled", "disabled", "x"])}),
    ),
    "update-webhook": (
        "PATCH", "/api/webhooks/{hook_sid}",
        _bodies({"status": "disabled"}, {"events": st.lists(st.text(max_size=12), max_size=3),
                                        "secret": json_values}),
    ),
}  # fmt: skip

raw_bodies = st.one_of(
    st.binary(max_size=200),
    st.sampled_from([b"", b"{", b"[]", b"null", b'{"name": "\xff"}', b"1e999999", b"[" * 5000]),
)


@st.composite
def api_requests(draw: st.DrawFn) -> tuple[str, str, bytes, str]:
    """(method, path template, body bytes, content type)."""
    method, path, bodies = OPERATIONS[draw(st.sampled_from(sorted(OPERATIONS)))]
    if draw(st.integers(0, 5)) == 0:
        content_type = draw(st.sampled_from(["application/json", "text/plain", "", "x/y"]))
        return method, path, draw(raw_bodies), content_type
    body = draw(bodies)
    if path == "/api/webhooks" and isinstance(body, dict):
        body["endpoint"] = LOOPBACK_HOOK
    return method, path, json.dumps(body).encode(), "application/json"


def api_target(server: ServerProcess) -> Target:
    """The API of ``server`` as a fuzz target (it owns one scenario and one webhook to edit)."""
    client = httpx.Client(
        base_url=server.api_url, headers={"X-API-Key": server.api_key}, timeout=30
    )
    created = client.post("/api/scenarios", json={"name": "fuzz-target", "script":
                                                   YAML_SEEDS[0].decode()})  # fmt: skip
    sid = created.json()["sid"] if created.status_code == 201 else "nosuchsc"
    files = client.get("/api/scenarios", params={"name": "echo"}).json()["hits"]
    file_sid = files[0]["sid"] if files else "nosuchsc"
    hook = client.post("/api/webhooks", json={"endpoint": LOOPBACK_HOOK, "status": "disabled"})
    hook_sid = hook.json()["sid"] if hook.status_code == 201 else "nosuchwh"

    def check(request: tuple[str, str, bytes, str]) -> None:
        method, template, body, content_type = request
        path = template.format(sid=sid, file_sid=file_sid, hook_sid=hook_sid)
        headers = {"Content-Type": content_type} if content_type else {}
        response = client.request(method, path, content=body, headers=headers)
        assert response.status_code < 500, (response.status_code, response.text[:2000])
        if response.status_code >= 400:
            error = response.json()["error"]
            assert error["code"] and error["message"], response.text
        assert server.alive()

    return Target("http-api", api_requests(), check)

"""An example request and answer for every operation of ``/openapi.json``.

The examples are built from the API's own models (:mod:`mediaserver.api.models`),
so each one passes the validation the real route applies: a model change that
breaks an example fails at import, not silently in the docs. :func:`add_examples`
puts them in the OpenAPI document (``example`` of each JSON request body and of
each 2xx answer); Swagger UI and ReDoc show them and fill "Try it out" with them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from mediaserver.api import models as m
from mediaserver.api.examples_numbers_sms import EXAMPLES as NUMBERS_SMS_EXAMPLES
from mediaserver.api.routes_audio_files import EXAMPLES as AUDIO_FILE_EXAMPLES
from mediaserver.api.telnyx.examples import EXAMPLES as TELNYX_EXAMPLES
from mediaserver.console.examples import EXAMPLES as CONSOLE_EXAMPLES

T0 = "2024-04-24T17:42:28.000Z"
T1 = "2024-04-24T17:42:31.250Z"
T2 = "2024-04-24T17:44:02.900Z"
SID = "k3x9a0pq"
CALL = "d2f7c1ab"
RUN = "api:9mnab2h6"

SCRIPT = """\
name: call-forwarding
branches:
  inbound-call:
    actions:
      - action: answer@v1
      - action: say@v1
        params:
          text: Hello
      - action: hangup@v1
"""

MEDIA = {
    "a": {"packets_in": 4562, "packets_out": 4570, "bytes_in": 729920, "bytes_out": 731200,
          "lost": 3, "fraction_lost": 0.0007, "jitter_ms": 2.1, "rtt_ms": None}
}  # fmt: skip


def _dump(model: BaseModel, exclude_none: bool = False) -> Any:
    return model.model_dump(mode="json", by_alias=True, exclude_none=exclude_none)


def _page(hits: list[Any]) -> dict[str, Any]:
    return {"offset": 0, "total": len(hits), "hasMore": False, "hits": hits}


def _ok(message: str) -> Any:
    return _dump(m.Status(code="ok", message=message))


_scenario = m.Scenario(
    sid=SID, name="call-forwarding", script=SCRIPT, origin="api", readonly=False,
    numbers=["+33199001234"], created=T0, updated=T1,
)  # fmt: skip
_run = m.Run(
    runid=RUN, scenario=SID, branch="api-initiated", status="completed",
    variables={"$customer": "ACME"}, error=None, started=T0, ended=T2,
)  # fmt: skip
_live = m.LiveCall.model_validate(
    {"id": CALL, "direction": "inbound", "from": "alice", "to": "ivr", "scenario": "ivr",
     "state": "answered", "sipCallId": "3848276298220188511@127.0.0.1", "started": T0,
     "answered": T1, "duration": 93.4, "codec": "PCMU", "media": MEDIA["a"],
     "node": "node-a"}
)  # fmt: skip
_cdr = m.CallRecord.model_validate(
    {"callid": CALL, "direction": "inbound", "status": "ended", "from": "alice",
     "fromName": "Alice", "to": "ivr", "number": "ivr",
     "scenario": {"sid": SID, "name": "ivr"}, "runid": f"inbound-call:{CALL}",
     "parentCallid": None, "sipCallId": "3848276298220188511@127.0.0.1", "started": T0,
     "answered": T1, "ended": T2, "duration": 94.9, "durationAnswered": 91.65,
     "hangupCause": "normal_clearing", "hangupCauseCode": 16, "hangupSource": "caller",
     "sipStatus": 200, "dialStatus": None, "media": MEDIA,
     "cliPres": "allowed_passed_screen", "customerField": "ACME42"}
)  # fmt: skip
_recording = m.Recording(
    sid="r7k2m9x0", type="voicemail", status="ready", callid=CALL, caller="alice",
    callee="voicemail", scenario=m.ScenarioRef(sid=SID, name="voicemail"), created=T1,
    read=True, readAt=T2, duration=12.48, size=199724, format="wav", channels=1,
    options=m.RecordingOptions(format="wav", channels=1),
    url="http://127.0.0.1:8080/api/recordings/r7k2m9x0/file",
    url_mp3="http://127.0.0.1:8080/api/recordings/r7k2m9x0/file.mp3",
)  # fmt: skip
TASK = "0f8e6a3c9b2d4e5f8a7b6c5d4e3f2a1b"
_task = m.TaskOut(
    id=TASK, type="calls.export", status="done", percent=100, created=T0, ended=T1,
    result={"url": f"http://127.0.0.1:8080/api/tasks/{TASK}/file", "rows": 1, "format": "csv"},
    error=None,
)  # fmt: skip
_webhook = m.Webhook(
    sid="w4h8q2z1", type="v2.call.inbound.ended", endpoint="https://example.com/hooks",
    events=["v2.call.inbound.ended"], status="enabled",
    options=m.WebhookOptionsOut(hmac_algo="SHA512"), signed=True, failed=0, lastfailed=None,
    created=T0, updated=T0,
)  # fmt: skip
_webhook_log = m.WebhookLog.model_validate(
    {"id": "0f8e6a3c9b2d4e5f8a7b6c5d4e3f2a1b", "sid": "w4h8q2z1",
     "endpoint": "https://example.com/hooks", "type": "v2.call.inbound.ended", "try": 0,
     "at": T2, "httpcode": 200, "outcome": "delivered", "error": None, "duration": 38.2,
     "subject": CALL}
)  # fmt: skip
_conference = m.Conference(
    name="standup", participants=2, recording=None,
    members=[m.ConferenceMember(callid=CALL, muted=False, moderator=True, waiting=False,
                                talking=True),
             m.ConferenceMember(callid="e8b1n4t6", muted=True, moderator=False, waiting=False,
                                talking=False)],
)  # fmt: skip
_queue = m.Queue(name="support", waiting=2, longestWait=41.5, callids=[CALL, "e8b1n4t6"])

_scenario_in = _dump(m.ScenarioIn(name="call-forwarding", script=SCRIPT))
_run_started = _dump(m.RunStarted(runid=RUN))

CSV = (
    "callid,direction,status,from,to,started,answered,ended,duration,hangupCause\n"
    f"{CALL},inbound,ended,alice,ivr,{T0},{T1},{T2},94.9,normal_clearing\n"
)
METRICS = (
    "# HELP mediaserver_calls_active Calls in progress.\n"
    "# TYPE mediaserver_calls_active gauge\n"
    'mediaserver_calls_active{direction="inbound"} 3.0\n'
    'mediaserver_calls_active{direction="outbound"} 1.0\n'
)

# (method, path) -> (request body or None, the 2xx answer).
EXAMPLES: dict[tuple[str, str], tuple[Any, Any]] = {
    ("GET", "/api/ping"): (None, _dump(m.Pong(time=T0, node="node-a"))),
    ("GET", "/api/scenarios"): (None, _page([_dump(_scenario)])),
    ("POST", "/api/scenarios"): (_scenario_in, _dump(_scenario)),
    ("GET", "/api/scenarios/{sid}"): (None, _dump(_scenario)),
    ("PUT", "/api/scenarios/{sid}"): (_scenario_in, _dump(_scenario)),
    ("PATCH", "/api/scenarios/{sid}"): (
        _dump(m.ScenarioPatch(name="forwarding-v2")),
        _dump(_scenario.model_copy(update={"name": "forwarding-v2"})),
    ),
    ("DELETE", "/api/scenarios/{sid}"): (None, _ok(f"scenario {SID} deleted")),
    ("POST", "/api/scenarios/{sid}/start"): (
        _dump(m.StartIn(to="sip:alice@127.0.0.1:5062", variables={"$customer": "ACME"})),
        _run_started,
    ),
    ("GET", "/api/scenarios/{sid}/runs/{runid}"): (None, _dump(_run)),
    ("DELETE", "/api/scenarios/{sid}/runs/{runid}"): (None, _ok(f"run {RUN} cancelled")),
    ("PUT", "/api/scenarios/{sid}/numbers/{number}"): (
        None,
        _ok("+33199001234 now routes to call-forwarding"),
    ),
    ("DELETE", "/api/scenarios/{sid}/numbers/{number}"): (
        None,
        _ok("+33199001234 no longer routes to call-forwarding"),
    ),
    ("GET", "/api/calls"): (None, _page([_dump(_live)])),
    ("GET", "/api/calls/{callid}"): (None, _dump(_live)),
    ("DELETE", "/api/calls/{callid}"): (None, _ok(f"call {CALL} hung up")),
    ("POST", "/api/calls/{callid}/actions"): (
        _dump(m.ActionsIn(actions=[{"action": "say@v1", "params": {"text": "Hello"}}])),
        _dump(m.RunStarted(runid="inject:p2k8d0sa")),
    ),
    ("GET", "/api/conferences"): (None, _page([_dump(_conference)])),
    ("GET", "/api/queues"): (None, _page([_dump(_queue)])),
    ("GET", "/api/cdrs"): (None, _page([_dump(_cdr)])),
    ("GET", "/api/cdrs/export"): (None, CSV),
    ("GET", "/api/cdrs/{callid}"): (None, _dump(_cdr)),
    ("GET", "/api/recordings"): (None, _page([_dump(_recording)])),
    ("GET", "/api/recordings/{sid}"): (None, _dump(_recording)),
    ("PATCH", "/api/recordings/{sid}"): (_dump(m.RecordingPatch(read=True)), _dump(_recording)),
    ("DELETE", "/api/recordings/{sid}"): (None, _ok("recording r7k2m9x0 deleted")),
    # Audio bytes: the example is the first bytes of a WAV file, as text.
    ("GET", "/api/recordings/{sid}/file"): (None, "RIFF....WAVEfmt "),
    ("GET", "/api/recordings/{sid}/file.mp3"): (None, "ID3..."),
    ("PATCH", "/api/recordings"): (_dump(m.RecordingsPatch(read=True)), TASK),
    ("DELETE", "/api/recordings"): (None, TASK),
    ("POST", "/api/calls/export"): (None, TASK),
    ("GET", "/api/tasks/{taskid}"): (None, _dump(_task)),
    ("DELETE", "/api/tasks/{taskid}"): (None, _ok(f"task {TASK} cancelled")),
    ("GET", "/api/tasks/{taskid}/file"): (None, CSV),
    ("GET", "/api/webhooks"): (None, _page([_dump(_webhook)])),
    ("POST", "/api/webhooks"): (
        _dump(
            m.WebhookIn(
                endpoint="https://example.com/hooks",
                type="v2.call.inbound.ended",
                options=m.WebhookOptions(hmac_algo="SHA512", hmac_secret="shared-secret"),
            ),
            exclude_none=True,
        ),
        _dump(_webhook),
    ),
    ("GET", "/api/webhooks/logs"): (None, _page([_dump(_webhook_log)])),
    ("GET", "/api/webhooks/{sid}"): (None, _dump(_webhook)),
    ("PATCH", "/api/webhooks/{sid}"): (
        _dump(m.WebhookPatch(status="disabled")),
        _dump(_webhook.model_copy(update={"status": "disabled"})),
    ),
    ("DELETE", "/api/webhooks/{sid}"): (None, _ok("webhook w4h8q2z1 deleted")),
    ("GET", "/metrics"): (None, METRICS),
}

# The Call Control API's operations (``/telnyx/v2/...``) bring their own.
EXAMPLES.update(TELNYX_EXAMPLES)
EXAMPLES.update(AUDIO_FILE_EXAMPLES)
EXAMPLES.update(NUMBERS_SMS_EXAMPLES)
EXAMPLES.update(CONSOLE_EXAMPLES)


def add_examples(document: dict[str, Any]) -> dict[str, Any]:
    """Put :data:`EXAMPLES` into an OpenAPI document (in place; returned for chaining)."""
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            example = EXAMPLES.get((method.upper(), path))
            if example is None:
                continue
            request, answer = example
            body = operation.get("requestBody")
            if body is not None and request is not None:
                for media in body.get("content", {}).values():
                    media["example"] = request
            for code, response in operation.get("responses", {}).items():
                if code.startswith("2"):
                    for media in response.get("content", {}).values():
                        media["example"] = answer
    return document

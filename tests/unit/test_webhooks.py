"""Webhooks: envelopes, signatures, subscription patterns, and delivery against a real receiver.

Delivery tests post to a minimal HTTP/1.1 server on 127.0.0.1 (``Receiver``)
whose answer to each request is scripted: a status (with headers), or a
hang that never answers. Delays are a few tens of milliseconds so that the
back-off can be measured without slowing the suite.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mediaserver.config import WebhookConfig
from mediaserver.webhooks.delivery import (
    DeliveryRecord,
    WebhookDispatcher,
    backoff_delay,
    is_retryable_status,
    parse_retry_after,
)
from mediaserver.webhooks.envelope import (
    EVENT_HEADER,
    SIGNATURE_HEADER,
    format_at,
    format_occurred_at,
    make_call_control_event,
    make_envelope,
    sign,
    verify_signature,
)
from mediaserver.webhooks.subscriptions import (
    WebhookTarget,
    event_matches,
    subscription_wants,
    targets_from_config,
    webhook_sid,
)
from tests.support.net import free_port

AT = datetime(2024, 4, 24, 17, 42, 28, 333_000, tzinfo=UTC)
SECRET = "hmac-secret"


# --- a scripted loopback receiver -----------------------------------------------------------


@dataclass
class Received:
    """One request as the receiver saw it."""

    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    at: float  # time.monotonic() when fully read

    def json(self) -> Any:
        return json.loads(self.body)


HANG = "hang"  # a reply that never comes
Reply = tuple[int, dict[str, str]] | str
Script = Callable[[Received], Reply]


def ok(_: Received) -> Reply:
    return 200, {}


class Receiver:
    """A loopback HTTP/1.1 server answering each request as ``script`` says."""

    def __init__(self, script: Script = ok, *, delay: float = 0.0) -> None:
        self.script = script
        self.delay = delay
        self.requests: list[Received] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self._closed = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.url = ""

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/hooks"

    async def close(self) -> None:
        self._closed.set()
        for writer in list(self._writers):
            writer.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def bodies(self) -> list[Any]:
        return [r.json() for r in self.requests]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            path = lines[0].split(" ")[1]
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    name, value = line.split(":", 1)
                    headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            request = Received(path, headers, body, time.monotonic())
            self.requests.append(request)
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            try:
                if self.delay:
                    await asyncio.sleep(self.delay)
                reply = self.script(request)
                if reply == HANG:
                    await self._closed.wait()
                    return
                assert not isinstance(reply, str)
                status, extra = reply
                out = [f"HTTP/1.1 {status} Whatever", "Content-Length: 0", "Connection: close"]
                out += [f"{k}: {v}" for k, v in extra.items()]
                writer.write(("\r\n".join(out) + "\r\n\r\n").encode("latin-1"))
                await writer.drain()
            finally:
                self.in_flight -= 1
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()


@dataclass
class Harness:
    """Receivers and dispatchers made by a test, closed after it."""

    receivers: list[Receiver] = field(default_factory=list)
    dispatchers: list[WebhookDispatcher] = field(default_factory=list)
    records: list[DeliveryRecord] = field(default_factory=list)

    async def receiver(self, script: Script = ok, *, delay: float = 0.0) -> Receiver:
        r = Receiver(script, delay=delay)
        await r.start()
        self.receivers.append(r)
        return r

    def dispatcher(
        self, *targets: WebhookTarget, start: bool = True, **options: Any
    ) -> WebhookDispatcher:
        async def on_delivery(record: DeliveryRecord) -> None:
            self.records.append(record)

        settings: dict[str, Any] = {
            "base_delay": 0.01,
            "max_delay": 1.0,
            "jitter": 0.0,
            "timeout": 2.0,
            "on_delivery": on_delivery,
            "rng": random.Random(7),
        }
        settings.update(options)
        d = WebhookDispatcher(lambda: targets, **settings)
        if start:
            d.start()
        self.dispatchers.append(d)
        return d


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    h = Harness()
    yield h
    for d in h.dispatchers:
        await d.stop(drain_timeout=0)
    for r in h.receivers:
        await r.close()


def target(
    url: str, events: tuple[str, ...] = ("*",), secret: str | None = SECRET
) -> WebhookTarget:
    return WebhookTarget(webhook_sid(url), url, events, secret)


async def settle(d: WebhookDispatcher, timeout: float = 5.0) -> None:
    await asyncio.wait_for(d.wait_idle(), timeout)


def balanced(d: WebhookDispatcher) -> bool:
    m = d.metrics
    return m.published == m.delivered + m.failed + m.dropped + d.pending


def counting(statuses: list[int]) -> Script:
    """Answer with ``statuses`` in turn, then 200."""
    left = list(statuses)

    def script(_: Received) -> Reply:
        return (left.pop(0) if left else 200), {}

    return script


# --- envelopes ------------------------------------------------------------------------------


def test_callr_envelope_has_the_seed_fields_and_formats() -> None:
    env = make_envelope("v2.call.inbound.started", "callrsid", {"sid": "abc"}, at=AT)
    assert list(env) == ["id", "at", "sid", "type", "try", "payload"]
    assert re.fullmatch(r"[0-9a-f]{32}", env["id"])
    assert env["at"] == "2024-04-24T17:42:28Z"
    assert env["sid"] == "callrsid"
    assert env["type"] == "v2.call.inbound.started"
    assert env["try"] == 0  # first post: no attempt made before
    assert env["payload"] == {"sid": "abc"}


def test_callr_envelope_try_counts_earlier_attempts() -> None:
    env = make_envelope("v2.recording.updated", "s", {}, event_id="e1", at=AT, attempt=3)
    assert (env["id"], env["try"]) == ("e1", 2)
    with pytest.raises(ValueError, match="attempt"):
        make_envelope("v2.recording.updated", "s", {}, attempt=0)


def test_envelope_ids_are_unique_and_times_default_to_now() -> None:
    ids = {make_envelope("v2.call.inbound.ended", "s", {})["id"] for _ in range(100)}
    assert len(ids) == 100
    at = make_envelope("v2.call.inbound.ended", "s", {})["at"]
    parsed = datetime.strptime(at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert abs((parsed - datetime.now(UTC)).total_seconds()) < 5


def test_times_are_rendered_in_utc() -> None:
    paris = datetime(2024, 4, 24, 19, 42, 28, 5_000, tzinfo=timezone(timedelta(hours=2)))
    assert format_at(paris) == "2024-04-24T17:42:28Z"
    assert format_occurred_at(paris) == "2024-04-24T17:42:28.005Z"
    naive = datetime(2024, 4, 24, 17, 42, 28)  # taken as UTC
    assert format_at(naive) == "2024-04-24T17:42:28Z"


def test_call_control_event_has_the_seed_envelope() -> None:
    env = make_call_control_event(
        "call.answered",
        {"call_control_id": "v2:abc"},
        occurred_at=AT,
        attempt=2,
        delivered_to="http://h/x",
    )
    assert set(env) == {"data", "meta"}
    data = env["data"]
    assert list(data) == ["record_type", "id", "event_type", "occurred_at", "payload"]
    assert data["record_type"] == "event"
    assert uuid.UUID(data["id"]).version == 4
    assert data["event_type"] == "call.answered"
    assert data["occurred_at"] == "2024-04-24T17:42:28.333Z"
    assert data["payload"] == {"call_control_id": "v2:abc"}
    assert env["meta"] == {"attempt": 2, "delivered_to": "http://h/x"}
    assert make_call_control_event("call.hangup", {})["meta"] == {"attempt": 1}


# --- signatures -----------------------------------------------------------------------------


def test_signature_is_hex_hmac_sha256_of_the_body() -> None:
    body = b"The quick brown fox jumps over the lazy dog"
    expected = "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
    assert sign(body, "key") == expected
    assert verify_signature(body, "key", expected)
    assert verify_signature(body, "key", expected.upper() + " ")


@pytest.mark.parametrize(
    ("body", "secret", "signature"),
    [
        (b'{"a":2}', "key", sign(b'{"a":1}', "key")),  # body changed
        (b'{"a":1}', "other", sign(b'{"a":1}', "key")),  # wrong secret
        (b'{"a":1}', "key", "not-hex"),
        (b'{"a":1}', "key", ""),
        (b'{"a":1}', "key", None),
    ],
)
def test_signature_check_refuses_tampering(body: bytes, secret: str, signature: str | None) -> None:
    assert not verify_signature(body, secret, signature)


# --- subscriptions --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "event_type", "matches"),
    [
        ("*", "v2.call.inbound.started", True),
        ("*", "call.hangup", True),
        ("v2.call.*", "v2.call.inbound.started", True),
        ("v2.call.*", "v2.call.outbound.ended", True),
        ("v2.call.*", "v2.recording.updated", False),
        ("v2.call.*", "v2.call", False),  # a final * needs one more segment
        ("call.*", "call.hangup", True),
        ("call.*", "call.playback.started", True),
        ("call.*", "v2.call.inbound.started", False),  # anchored at the start
        ("v2.call.*.ended", "v2.call.inbound.ended", True),
        ("v2.call.*.ended", "v2.call.inbound.started", False),
        ("v2.call.*.ended", "v2.call.inbound.x.ended", False),  # inner * is one segment
        ("v2.recording.updated", "v2.recording.updated", True),
        ("v2.recording.updated", "v2.recording.updated.x", False),
        ("V2.recording.updated", "v2.recording.updated", False),  # case-sensitive
        ("v2.call?", "v2.calls", False),  # no other glob characters
        ("v2.call.inbound*", "v2.call.inbound.started", False),
    ],
)
def test_event_patterns(pattern: str, event_type: str, matches: bool) -> None:
    assert event_matches(pattern, event_type) is matches


def test_a_webhook_wants_an_event_when_any_pattern_matches() -> None:
    assert subscription_wants(["v2.call.*", "call.*"], "call.hangup")
    assert not subscription_wants(["v2.call.*", "call.*"], "conference.created")
    assert not subscription_wants([], "call.hangup")


@given(st.lists(st.from_regex(r"[a-z0-9-]{1,8}", fullmatch=True), min_size=1, max_size=5))
def test_patterns_match_themselves_and_their_prefixes(segments: list[str]) -> None:
    event_type = ".".join(segments)
    assert event_matches(event_type, event_type)
    assert event_matches("*", event_type)
    for i in range(1, len(segments)):
        assert event_matches(".".join(segments[:i]) + ".*", event_type)
    assert not event_matches(event_type + ".*", event_type)


def test_config_webhooks_get_stable_callr_sids() -> None:
    configs = [
        WebhookConfig("http://127.0.0.1:9000/events", ("v2.call.*", "call.*"), "s"),
        WebhookConfig("http://127.0.0.1:9000/other"),
    ]
    first, second = targets_from_config(configs), targets_from_config(configs)
    assert first == second
    assert all(re.fullmatch(r"[a-z0-9]{8}", t.id) for t in first)
    assert first[0].id != first[1].id
    assert first[0].events == ("v2.call.*", "call.*")
    assert first[0].secret == "s"
    assert first[1].events == ("*",)


# --- retry policy ---------------------------------------------------------------------------


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_retryable_statuses(status: int) -> None:
    assert is_retryable_status(status)


@pytest.mark.parametrize("status", [301, 400, 401, 403, 404, 410, 422])
def test_final_statuses(status: int) -> None:
    assert not is_retryable_status(status)


def test_backoff_doubles_up_to_the_cap() -> None:
    delays = [backoff_delay(n, 1.0, 300.0, 0.0, 0.5) for n in range(1, 12)]
    assert delays == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]
    assert backoff_delay(3, 1.0, 300.0, 0.25, 0.999) == pytest.approx(3.0, abs=0.01)


@given(
    attempt=st.integers(1, 1000),
    base=st.floats(0, 100),
    maximum=st.floats(0, 1000),
    jitter=st.floats(0, 1),
    rand=st.floats(0, 1, exclude_max=True),
)
def test_backoff_stays_within_bounds(
    attempt: int, base: float, maximum: float, jitter: float, rand: float
) -> None:
    nominal = min(maximum, base * 2.0 ** min(attempt - 1, 62))
    delay = backoff_delay(attempt, base, maximum, jitter, rand)
    assert 0 <= delay <= maximum
    assert delay >= nominal * (1 - jitter) - 1e-9


def test_retry_after_values() -> None:
    now = datetime(2024, 4, 24, 17, 42, 28, tzinfo=UTC)
    assert parse_retry_after("120") == 120
    assert parse_retry_after(" 0.5 ") == 0.5
    in_30s = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(in_30s, now) == 30
    assert parse_retry_after(format_datetime(now - timedelta(hours=1), usegmt=True), now) == 0
    for bad in (None, "", "soon", "-5", "nan"):
        assert parse_retry_after(bad) is None


def test_dispatcher_refuses_bad_settings() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        WebhookDispatcher(list, max_attempts=0)
    with pytest.raises(ValueError, match="max_attempts"):
        WebhookDispatcher(list, max_attempts=12)  # "try" stops at 10 in the seed
    with pytest.raises(ValueError):
        WebhookDispatcher(list, timeout=0)
    with pytest.raises(ValueError):
        WebhookDispatcher(list, max_queue=0)


# --- delivery -------------------------------------------------------------------------------


async def test_an_event_reaches_the_webhooks_that_want_it_signed(harness: Harness) -> None:
    calls = await harness.receiver()
    recordings = await harness.receiver()
    calls_target = target(calls.url, ("v2.call.*",))
    d = harness.dispatcher(calls_target, target(recordings.url, ("v2.recording.*",)))

    queued = d.publish("v2.call.inbound.started", "callsid1", {"sid": "callsid1"}, at=AT)
    assert queued == 1
    await settle(d)

    assert recordings.requests == []
    [request] = calls.requests
    assert request.path == "/hooks"
    assert request.headers["content-type"] == "application/json"
    assert request.headers[EVENT_HEADER.lower()] == "v2.call.inbound.started"
    assert verify_signature(request.body, SECRET, request.headers[SIGNATURE_HEADER.lower()])
    body = request.json()
    assert body["sid"] == calls_target.id  # the webhook's SID, as in the seed
    assert body["type"] == "v2.call.inbound.started"
    assert body["try"] == 0
    assert body["at"] == "2024-04-24T17:42:28Z"
    assert body["payload"] == {"sid": "callsid1"}

    [record] = harness.records
    assert record.outcome == "delivered"
    assert (record.webhook_id, record.url) == (calls_target.id, calls.url)
    assert (record.event_id, record.event_type) == (body["id"], "v2.call.inbound.started")
    assert (record.subject_sid, record.attempt, record.status_code) == ("callsid1", 1, 200)
    assert record.error is None and record.retry_in is None
    assert record.duration_ms >= 0
    assert record.at.tzinfo is not None
    assert d.metrics.published == d.metrics.delivered == 1
    assert balanced(d)


async def test_unsigned_when_the_webhook_has_no_secret(harness: Harness) -> None:
    r = await harness.receiver()
    d = harness.dispatcher(target(r.url, secret=None))
    d.publish("v2.call.outbound.ended", "c", {})
    await settle(d)
    assert SIGNATURE_HEADER.lower() not in r.requests[0].headers


async def test_one_event_id_for_every_webhook(harness: Harness) -> None:
    a, b = await harness.receiver(), await harness.receiver()
    d = harness.dispatcher(target(a.url), target(b.url))
    assert d.publish("v2.call.inbound.ended", "c", {"n": 1}) == 2
    await settle(d)
    assert a.bodies()[0]["id"] == b.bodies()[0]["id"]
    assert a.bodies()[0]["sid"] != b.bodies()[0]["sid"]


async def test_call_control_types_use_the_call_control_envelope(harness: Harness) -> None:
    r = await harness.receiver()
    d = harness.dispatcher(target(r.url, ("call.*",)))
    d.publish("call.hangup", "c", {"hangup_cause": "normal_clearing"}, at=AT)
    await settle(d)
    body = r.bodies()[0]
    assert body["data"]["event_type"] == "call.hangup"
    assert body["data"]["occurred_at"] == "2024-04-24T17:42:28.333Z"
    assert body["data"]["payload"] == {"hangup_cause": "normal_clearing"}
    assert body["meta"] == {"attempt": 1, "delivered_to": r.url}


async def test_publish_to_posts_to_one_url_and_retries_with_the_same_id(
    harness: Harness,
) -> None:
    r = await harness.receiver(counting([500]))
    d = harness.dispatcher()  # no subscriptions: a Call Control app's own URL
    event_id = d.publish_to(r.url, "call.initiated", {"call_control_id": "v2:x"}, secret=SECRET)
    await settle(d)
    first, second = r.bodies()
    assert first["data"]["id"] == second["data"]["id"] == event_id
    assert [first["meta"]["attempt"], second["meta"]["attempt"]] == [1, 2]
    for request in r.requests:
        assert verify_signature(request.body, SECRET, request.headers[SIGNATURE_HEADER.lower()])
    assert r.requests[0].body != r.requests[1].body  # re-signed: the attempt changed


async def test_the_payload_is_taken_when_published(harness: Harness) -> None:
    r = await harness.receiver()
    d = harness.dispatcher(target(r.url), start=False)
    cdr = {"status": "ringing"}
    d.publish("v2.call.inbound.started", "c", cdr)
    cdr["status"] = "answered"  # changed by the call afterwards
    d.start()
    await settle(d)
    assert r.bodies()[0]["payload"] == {"status": "ringing"}


async def test_subscriptions_are_read_at_each_publish(harness: Harness) -> None:
    r = await harness.receiver()
    current: list[WebhookTarget] = []
    d = WebhookDispatcher(lambda: current, client=None)
    d.start()
    harness.dispatchers.append(d)
    assert d.publish("v2.call.inbound.started", "c", {}) == 0
    current.append(target(r.url))
    assert d.publish("v2.call.inbound.started", "c", {}) == 1
    await settle(d)
    assert len(r.requests) == 1


async def test_publish_never_raises_into_the_call(harness: Harness) -> None:
    def broken() -> list[WebhookTarget]:
        raise RuntimeError("database is locked")

    d = WebhookDispatcher(broken)
    d.start()
    harness.dispatchers.append(d)
    assert d.publish("v2.call.inbound.started", "c", {}) == 0
    good = harness.dispatcher(target("http://127.0.0.1:9/"))
    assert good.publish("v2.call.inbound.started", "c", {"when": datetime.now()}) == 0
    assert good.publish_to("http://127.0.0.1:9/", "call.hangup", {"x": object()}) is None


# --- retries --------------------------------------------------------------------------------


async def test_server_errors_are_retried_with_growing_delays(harness: Harness) -> None:
    r = await harness.receiver(counting([500, 503]))
    d = harness.dispatcher(target(r.url), base_delay=0.05)
    d.publish("v2.call.inbound.ended", "c", {})
    await settle(d)

    assert [b["try"] for b in r.bodies()] == [0, 1, 2]
    assert len({b["id"] for b in r.bodies()}) == 1
    gaps = [b.at - a.at for a, b in zip(r.requests, r.requests[1:], strict=False)]
    assert gaps[0] >= 0.045 and gaps[1] >= 0.095
    assert [(x.outcome, x.status_code, x.retry_in) for x in harness.records] == [
        ("retrying", 500, 0.05),
        ("retrying", 503, 0.1),
        ("delivered", 200, None),
    ]
    assert harness.records[0].error == "HTTP 500"
    assert (d.metrics.retried, d.metrics.delivered, d.metrics.failed) == (2, 1, 0)
    assert balanced(d)


async def test_jitter_shortens_the_wait_by_up_to_its_share(harness: Harness) -> None:
    r = await harness.receiver(counting([500] * 4))
    d = harness.dispatcher(target(r.url), base_delay=0.02, jitter=0.5)
    d.publish("v2.call.inbound.ended", "c", {})
    await settle(d)
    waits = [x.retry_in for x in harness.records if x.retry_in is not None]
    nominal = [0.02, 0.04, 0.08, 0.16]
    assert len(waits) == 4
    assert all(n * 0.5 <= w <= n for w, n in zip(waits, nominal, strict=True))


@pytest.mark.parametrize("status", [301, 400, 401, 404, 410])
async def test_client_errors_are_not_retried(harness: Harness, status: int) -> None:
    r = await harness.receiver(counting([status]))
    d = harness.dispatcher(target(r.url))
    d.publish("v2.call.inbound.started", "c", {"n": 1})
    d.publish("v2.call.inbound.ended", "c", {"n": 2})
    await settle(d)
    assert [b["payload"]["n"] for b in r.bodies()] == [1, 2]  # the next event still goes
    assert [(x.outcome, x.status_code) for x in harness.records] == [
        ("failed", status),
        ("delivered", 200),
    ]
    assert (d.metrics.failed, d.metrics.retried, d.metrics.delivered) == (1, 0, 1)


@pytest.mark.parametrize("status", [408, 429, 502])
async def test_timeouts_and_overload_statuses_are_retried(harness: Harness, status: int) -> None:
    r = await harness.receiver(counting([status]))
    d = harness.dispatcher(target(r.url))
    d.publish("v2.call.inbound.started", "c", {})
    await settle(d)
    assert [x.status_code for x in harness.records] == [status, 200]


async def test_retry_after_is_respected_on_429(harness: Harness) -> None:
    def script(request: Received) -> Reply:
        first = len(r.requests) == 1
        return (429, {"Retry-After": "0.3"}) if first else (200, {})

    r = await harness.receiver(script)
    d = harness.dispatcher(target(r.url), base_delay=0.001)
    d.publish("v2.call.inbound.started", "c", {})
    await settle(d)
    assert len(r.requests) == 2
    assert r.requests[1].at - r.requests[0].at >= 0.28
    assert harness.records[0].retry_in == pytest.approx(0.3)


async def test_retry_after_is_capped_by_max_delay(harness: Harness) -> None:
    r = await harness.receiver(lambda _: (503, {"Retry-After": "3600"}))
    d = harness.dispatcher(target(r.url), max_delay=0.05, max_attempts=2)
    d.publish("v2.call.inbound.started", "c", {})
    await settle(d)
    assert harness.records[0].retry_in == 0.05
    assert [x.outcome for x in harness.records] == ["retrying", "failed"]


async def test_a_receiver_that_never_answers_times_out(harness: Harness) -> None:
    r = await harness.receiver(lambda _: HANG)
    d = harness.dispatcher(target(r.url), timeout=0.2, max_attempts=2)
    d.publish("v2.call.inbound.started", "c", {})
    await settle(d)
    assert len(r.requests) == 2
    assert [(x.outcome, x.status_code) for x in harness.records] == [
        ("retrying", None),
        ("failed", None),
    ]
    assert all("timeout" in (x.error or "") for x in harness.records)
    assert all(x.duration_ms >= 150 for x in harness.records)
    assert d.metrics.failed == 1 and balanced(d)


async def test_a_dead_receiver_uses_up_the_attempts(harness: Harness) -> None:
    url = f"http://127.0.0.1:{free_port('tcp')}/hooks"  # nothing listens: refused
    d = harness.dispatcher(target(url), max_attempts=4)
    d.publish("v2.call.outbound.ended", "c", {})
    await settle(d)
    assert [x.attempt for x in harness.records] == [1, 2, 3, 4]
    assert [x.outcome for x in harness.records] == ["retrying"] * 3 + ["failed"]
    assert all(x.status_code is None and "Connect" in (x.error or "") for x in harness.records)
    assert (d.metrics.retried, d.metrics.failed) == (3, 1)
    assert balanced(d)


async def test_a_bad_url_fails_at_once(harness: Harness) -> None:
    d = harness.dispatcher(target("ftp://127.0.0.1/hooks"))
    d.publish("v2.call.outbound.ended", "c", {})
    await settle(d)
    [record] = harness.records
    assert record.outcome == "failed" and "bad URL" in (record.error or "")


async def test_a_failing_delivery_log_does_not_stop_delivery(harness: Harness) -> None:
    r = await harness.receiver()

    async def broken(record: DeliveryRecord) -> None:
        raise RuntimeError("disk full")

    d = harness.dispatcher(target(r.url), on_delivery=broken)
    d.publish("v2.call.inbound.started", "c", {})
    d.publish("v2.call.inbound.ended", "c", {})
    await settle(d)
    assert len(r.requests) == 2 and d.metrics.delivered == 2


# --- ordering, isolation, concurrency -------------------------------------------------------


async def test_events_to_one_url_arrive_in_publish_order_despite_retries(
    harness: Harness,
) -> None:
    fails = {0: 2, 2: 1}  # event number -> how many 500s before success

    def script(request: Received) -> Reply:
        n = request.json()["payload"]["n"]
        if fails.get(n, 0):
            fails[n] -= 1
            return 500, {}
        return 200, {}

    r = await harness.receiver(script)
    d = harness.dispatcher(target(r.url), base_delay=0.02)
    for n in range(6):
        d.publish(
            "v2.call.inbound.started" if n % 2 == 0 else "v2.call.inbound.ended", "c", {"n": n}
        )
    await settle(d)
    arrivals = [b["payload"]["n"] for b in r.bodies()]
    assert arrivals == [0, 0, 0, 1, 2, 2, 3, 4, 5]  # a retry holds back what follows
    assert d.metrics.delivered == 6


async def test_a_hanging_receiver_does_not_hold_back_other_urls(harness: Harness) -> None:
    slow = await harness.receiver(lambda _: HANG)
    fast = await harness.receiver()
    d = harness.dispatcher(target(slow.url), target(fast.url), timeout=1.0, max_attempts=1)
    started = time.monotonic()
    for n in range(5):
        d.publish("v2.call.inbound.started", f"c{n}", {"n": n})
    while len(fast.requests) < 5:
        await asyncio.sleep(0.01)
    assert time.monotonic() - started < 0.8  # before the slow one's first timeout
    assert [b["payload"]["n"] for b in fast.bodies()] == [0, 1, 2, 3, 4]
    assert len(slow.requests) == 1  # its later events wait behind the first


async def test_publish_returns_at_once_while_the_receiver_hangs(harness: Harness) -> None:
    r = await harness.receiver(lambda _: HANG)
    d = harness.dispatcher(target(r.url), timeout=5.0)
    d.publish("v2.call.inbound.started", "c", {"n": -1})
    while not r.requests:
        await asyncio.sleep(0.005)

    lateness: list[float] = []

    async def call_task() -> None:
        # A call's 20 ms media clock, publishing an event on each tick.
        for n in range(25):
            due = time.monotonic() + 0.02
            before = time.perf_counter()
            d.publish("v2.call.inbound.ended", "c", {"n": n})
            assert time.perf_counter() - before < 0.005
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            lateness.append(time.monotonic() - due)

    await asyncio.wait_for(call_task(), 2.0)
    assert max(lateness) < 0.05
    assert d.pending == 26


async def test_concurrent_requests_are_bounded(harness: Harness) -> None:
    r = await harness.receiver(delay=0.05)
    urls = [f"{r.url}/{n}" for n in range(6)]  # six URLs, so six lanes, on one server
    d = harness.dispatcher(*(target(url) for url in urls), max_concurrency=2)
    d.publish("v2.call.inbound.started", "c", {})
    await settle(d)
    assert sorted(x.path for x in r.requests) == sorted(f"/hooks/{n}" for n in range(6))
    assert r.most_in_flight == 2


# --- queue bound and shutdown ---------------------------------------------------------------


async def test_overflow_drops_the_oldest_waiting_event(harness: Harness) -> None:
    r = await harness.receiver()
    d = harness.dispatcher(target(r.url), start=False, max_queue=3)
    for n in range(5):
        d.publish("v2.call.inbound.started", "c", {"n": n})
    assert (d.metrics.published, d.metrics.dropped, d.pending) == (5, 2, 3)
    d.start()
    await settle(d)
    assert [b["payload"]["n"] for b in r.bodies()] == [2, 3, 4]
    assert balanced(d)


async def test_overflow_drops_from_the_most_backed_up_url(harness: Harness) -> None:
    dead, alive = await harness.receiver(), await harness.receiver()
    d = harness.dispatcher(start=False, max_queue=4)
    for n in range(3):
        d.publish_to(dead.url, "call.hangup", {"n": n})
    d.publish_to(alive.url, "call.hangup", {"n": 0})
    d.publish_to(alive.url, "call.hangup", {"n": 1})  # full: dead's oldest goes
    d.start()
    await settle(d)
    assert [b["data"]["payload"]["n"] for b in dead.bodies()] == [1, 2]
    assert [b["data"]["payload"]["n"] for b in alive.bodies()] == [0, 1]


async def test_stop_drains_what_is_queued(harness: Harness) -> None:
    r = await harness.receiver(delay=0.02)
    d = harness.dispatcher(target(r.url))
    for n in range(5):
        d.publish("v2.call.inbound.started", "c", {"n": n})
    assert await d.stop(drain_timeout=5.0) == 0
    assert [b["payload"]["n"] for b in r.bodies()] == [0, 1, 2, 3, 4]
    assert d.metrics.delivered == 5


async def test_stop_gives_up_after_the_drain_timeout(harness: Harness) -> None:
    r = await harness.receiver(lambda _: HANG)
    d = harness.dispatcher(target(r.url), timeout=10.0)
    for n in range(3):
        d.publish("v2.call.inbound.started", "c", {"n": n})
    started = time.monotonic()
    assert await d.stop(drain_timeout=0.2) == 3
    assert time.monotonic() - started < 1.0
    assert d.metrics.dropped == 3 and d.pending == 0
    assert balanced(d)


async def test_events_published_after_stop_are_dropped(harness: Harness) -> None:
    r = await harness.receiver()
    d = harness.dispatcher(target(r.url))
    await d.stop(drain_timeout=0)
    assert d.publish("v2.call.inbound.started", "c", {}) == 0
    assert d.publish_to(r.url, "call.hangup", {}) is None
    await asyncio.sleep(0.05)
    assert r.requests == []
    assert (d.metrics.published, d.metrics.dropped) == (2, 2)


async def test_stop_before_start_drops_the_queue(harness: Harness) -> None:
    d = harness.dispatcher(target("http://127.0.0.1:9/"), start=False)
    d.publish("v2.call.inbound.started", "c", {})
    assert await d.stop(drain_timeout=5.0) == 1
    assert balanced(d)


async def test_a_given_client_is_left_open(harness: Harness) -> None:
    r = await harness.receiver()
    async with httpx.AsyncClient() as client:
        d = harness.dispatcher(target(r.url), client=client)
        d.publish("v2.call.inbound.started", "c", {})
        await d.stop(drain_timeout=5.0)
        assert not client.is_closed
        assert len(r.requests) == 1

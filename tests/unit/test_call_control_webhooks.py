"""Call Control webhooks: Ed25519 signatures the official Telnyx SDK accepts, the signing key
kept in the data dir, the failover URL and the per-post timeout, against a real receiver.

The receiver and dispatcher harness are those of ``test_webhooks``; the SDK's
``webhooks.unwrap`` is the verifier (it checks with PyNaCl, the server signs
with ``cryptography``: two implementations agreeing).
"""

from __future__ import annotations

import base64
import json
import os
import stat
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import telnyx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mediaserver.callcontrol.keys import (
    KeyFileError,
    key_file,
    public_key_b64,
    read_signing_key,
    signing_key,
)
from mediaserver.config import Config, HttpConfig
from mediaserver.webhooks.envelope import (
    ED25519_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign_ed25519,
    verify_ed25519,
)
from tests.support.net import free_port
from tests.unit.test_webhooks import HANG, Harness, Received, Reply, balanced, settle

KEY = Ed25519PrivateKey.generate()
PUBLIC = public_key_b64(KEY)
SDK = telnyx.Telnyx(api_key="unused", base_url="http://127.0.0.1:9/telnyx/v2")
HANGUP = {
    "call_control_id": "v3:abc",
    "call_leg_id": "leg-1",
    "call_session_id": "session-1",
    "connection_id": "1293384261075731499",
    "hangup_cause": "normal_clearing",
    "hangup_source": "caller",
    "sip_hangup_cause": "200",
    "client_state": base64.b64encode(b"state").decode(),
}


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    h = Harness()
    yield h
    for d in h.dispatchers:
        await d.stop(drain_timeout=0)
    for r in h.receivers:
        await r.close()


def unwrap(request: Received, key: str = PUBLIC) -> object:
    """What the SDK makes of a received post (raises ValueError when it refuses it)."""
    return SDK.webhooks.unwrap(request.body.decode("utf-8"), headers=request.headers, key=key)


def dead_url() -> str:
    return f"http://127.0.0.1:{free_port('tcp')}/hooks"  # nothing listens: refused


# --- signatures -----------------------------------------------------------------------------


async def test_call_control_posts_are_signed_so_the_sdk_unwraps_them(harness: Harness) -> None:
    r = await harness.receiver()
    d = harness.dispatcher(signing_key=KEY)
    event_id = d.publish_to(r.url, "call.hangup", HANGUP)
    await settle(d)
    [request] = r.requests
    assert SIGNATURE_HEADER.lower() not in request.headers  # no secret: no HMAC
    assert abs(int(request.headers[TIMESTAMP_HEADER]) - time.time()) < 60
    event = unwrap(request)
    data = event.data  # type: ignore[attr-defined]
    assert (data.id, data.event_type, data.record_type) == (event_id, "call.hangup", "event")
    assert data.payload.hangup_cause == "normal_clearing"
    assert data.payload.client_state == HANGUP["client_state"]


async def test_non_ascii_bodies_verify_as_the_receiver_decodes_them(harness: Harness) -> None:
    r = await harness.receiver()
    d = harness.dispatcher(signing_key=KEY)
    d.publish_to(r.url, "call.initiated", {**HANGUP, "caller_id_name": "Zoë 東京 ☎"})
    await settle(d)
    [request] = r.requests
    assert "Zoë 東京 ☎".encode() in request.body  # posted as UTF-8, not \u escapes
    event = unwrap(request)
    assert event.data.payload.caller_id_name == "Zoë 東京 ☎"  # type: ignore[attr-defined]


async def test_every_attempt_is_signed_afresh(harness: Harness) -> None:
    statuses = [500]

    def script(_: Received) -> Reply:
        return (statuses.pop() if statuses else 200), {}

    r = await harness.receiver(script)
    d = harness.dispatcher(signing_key=KEY)
    d.publish_to(r.url, "call.answered", {"call_control_id": "v3:abc"})
    await settle(d)
    first, second = r.requests
    assert first.body != second.body  # meta.attempt changed
    assert first.headers[ED25519_HEADER] != second.headers[ED25519_HEADER]
    for request in (first, second):
        unwrap(request)


async def test_native_events_keep_the_hmac_only(harness: Harness) -> None:
    r = await harness.receiver()
    d = harness.dispatcher(signing_key=KEY)
    d.publish_to(r.url, "v2.call.inbound.ended", {}, secret="s")
    await settle(d)
    [request] = r.requests
    assert ED25519_HEADER not in request.headers and TIMESTAMP_HEADER not in request.headers
    assert SIGNATURE_HEADER.lower() in request.headers


def signed(body: bytes, now: float | None = None) -> dict[str, str]:
    return {"Content-Type": "application/json", **sign_ed25519(body, KEY, now)}


BODY = json.dumps({"data": {"record_type": "event", "event_type": "call.hangup"}}).encode()


def test_the_sdk_refuses_a_tampered_body() -> None:
    headers = signed(BODY)
    SDK.webhooks.unwrap(BODY.decode(), headers=headers, key=PUBLIC)
    tampered = BODY.replace(b"hangup", b"answer")
    with pytest.raises(ValueError, match="signature does not match"):
        SDK.webhooks.unwrap(tampered.decode(), headers=headers, key=PUBLIC)
    assert not verify_ed25519(tampered, headers, KEY.public_key())


def test_the_sdk_refuses_an_old_timestamp() -> None:
    headers = signed(BODY, now=time.time() - 301)
    with pytest.raises(ValueError, match="too old"):
        SDK.webhooks.unwrap(BODY.decode(), headers=headers, key=PUBLIC)
    assert not verify_ed25519(BODY, headers, KEY.public_key())


def test_the_sdk_refuses_another_key() -> None:
    other = public_key_b64(Ed25519PrivateKey.generate())
    with pytest.raises(ValueError, match="signature does not match"):
        SDK.webhooks.unwrap(BODY.decode(), headers=signed(BODY), key=other)


def test_our_check_agrees_with_the_sdk_on_good_and_bad_headers() -> None:
    headers = signed(BODY)
    assert verify_ed25519(BODY, headers, KEY.public_key())
    assert not verify_ed25519(BODY, {**headers, TIMESTAMP_HEADER: "12x"}, KEY.public_key())
    assert not verify_ed25519(BODY, {**headers, ED25519_HEADER: "%%"}, KEY.public_key())
    assert not verify_ed25519(BODY, {TIMESTAMP_HEADER: headers[TIMESTAMP_HEADER]}, KEY.public_key())
    moved = str(int(headers[TIMESTAMP_HEADER]) + 1)  # the timestamp is signed too
    assert not verify_ed25519(BODY, {**headers, TIMESTAMP_HEADER: moved}, KEY.public_key())


# --- the key in the data dir ----------------------------------------------------------------


def config(tmp_path: Path) -> Config:
    return Config(path=tmp_path / "config.yaml", http=HttpConfig("127.0.0.1", 0), data_dir=tmp_path)


def test_the_key_is_made_once_kept_0600_and_its_public_half_printed_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = signing_key(config(tmp_path))
    path = tmp_path / "data" / "callcontrol-key.pem"
    assert key_file(config(tmp_path)) == path
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    printed = [x for x in capsys.readouterr().out.splitlines() if x.startswith("callcontrol")]
    assert printed == [f"callcontrol-public-key {public_key_b64(key)}"]
    assert len(base64.b64decode(public_key_b64(key))) == 32  # what the SDK insists on
    again = signing_key(config(tmp_path))
    assert public_key_b64(again) == public_key_b64(key)
    assert "callcontrol" not in capsys.readouterr().out


def test_a_missing_or_empty_key_file_reads_as_none(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    assert read_signing_key(path) is None
    path.write_text("\n")
    assert read_signing_key(path) is None


def test_a_damaged_key_file_is_named_with_the_fix(tmp_path: Path) -> None:
    path = key_file(config(tmp_path))
    path.parent.mkdir()
    path.write_text("-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----\n")
    with pytest.raises(KeyFileError, match=r"callcontrol-key\.pem.*delete the file"):
        signing_key(config(tmp_path))


# --- failover and timeout -------------------------------------------------------------------


async def test_a_dead_primary_sends_the_event_to_the_failover_url(harness: Harness) -> None:
    failover = await harness.receiver()
    primary = dead_url()
    d = harness.dispatcher(signing_key=KEY, max_attempts=2)
    event_id = d.publish_to(primary, "call.initiated", HANGUP, failover_url=failover.url)
    await settle(d)
    [request] = failover.requests
    body = request.json()
    assert body["data"]["id"] == event_id
    assert body["meta"] == {"attempt": 1, "delivered_to": failover.url}
    unwrap(request)
    seen = [(x.url, x.attempt, x.outcome, x.failover) for x in harness.records]
    assert seen == [
        (primary, 1, "retrying", False),
        (primary, 2, "failed", False),
        (failover.url, 1, "delivered", True),
    ]
    m = d.metrics
    assert (m.published, m.delivered, m.failed, m.failed_over) == (1, 1, 0, 1)
    assert balanced(d)


async def test_a_delivered_event_never_goes_to_the_failover_url(harness: Harness) -> None:
    primary = await harness.receiver()
    failover = await harness.receiver()
    d = harness.dispatcher(signing_key=KEY)
    d.publish_to(primary.url, "call.answered", HANGUP, failover_url=failover.url)
    await settle(d)
    assert len(primary.requests) == 1 and failover.requests == []


async def test_when_both_urls_fail_the_event_fails_once(harness: Harness) -> None:
    d = harness.dispatcher(max_attempts=2)
    d.publish_to(dead_url(), "call.hangup", HANGUP, failover_url=dead_url())
    await settle(d)
    assert [x.outcome for x in harness.records] == ["retrying", "failed"] * 2
    assert (d.metrics.failed, d.metrics.delivered, d.metrics.failed_over) == (1, 0, 1)
    assert balanced(d)


async def test_failover_keeps_each_urls_order(harness: Harness) -> None:
    # Event 0 is refused for good by the primary (a 4xx is final); 1 and 2 are taken.
    def script(request: Received) -> Reply:
        return (400 if request.json()["data"]["payload"]["n"] == 0 else 200), {}

    primary = await harness.receiver(script)
    failover = await harness.receiver()
    d = harness.dispatcher()
    for n in range(3):
        d.publish_to(primary.url, "call.dtmf.received", {"n": n}, failover_url=failover.url)
    await settle(d)
    assert [b["data"]["payload"]["n"] for b in primary.bodies()] == [0, 1, 2]
    assert [b["data"]["payload"]["n"] for b in failover.bodies()] == [0]
    assert d.metrics.delivered == 3 and balanced(d)


async def test_a_post_can_have_its_own_timeout(harness: Harness) -> None:
    r = await harness.receiver(lambda _: HANG)
    d = harness.dispatcher(timeout=30.0, max_attempts=1)
    d.publish_to(r.url, "call.hangup", HANGUP, timeout=0.2)
    await settle(d)
    [record] = harness.records
    assert record.outcome == "failed" and record.error == "timeout after 0.2 s"

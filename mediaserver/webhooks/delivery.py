"""Webhook delivery: ordered, retried posts that never hold up a call (SPEC section 5).

Theory of operation
-------------------
Events are put in envelopes and signed by :mod:`mediaserver.webhooks.envelope`
and matched to webhooks by :mod:`mediaserver.webhooks.subscriptions`; this
module posts them.

:meth:`WebhookDispatcher.publish` is synchronous and only queues:
it never awaits, so the call task that publishes is never delayed by a slow or
dead receiver. Pending posts wait in one FIFO lane per URL, and each lane has
at most one post in flight, so a URL receives its events in publish order. A
post being retried holds back the later events to its URL (strict order:
``...ended`` never arrives before ``...started``); other URLs are unaffected.
A post queued with a failover URL (a Call Control application's
``webhook_event_failover_url``) whose attempts at its URL all failed is then
queued at the back of the failover URL's lane, where the same rules apply
(ordered, retried, at most one in flight); its first lane moves on meanwhile,
so each URL still receives its events in the order they reached it.
At most ``max_concurrency`` requests are open at once across all lanes; a lane
waiting out a back-off does not hold one of those slots.

Each attempt ends one of three ways: 2xx delivers; 408, 429, 5xx, timeouts and
connection errors are retried; any other status (other 4xx, 3xx: redirects
are not followed) and malformed URLs fail at once. Retries wait
``base_delay * 2**(attempt-1)``, capped at ``max_delay``, shortened by up to
``jitter`` of itself at random so that receivers coming back are not hit in
step; a ``Retry-After`` on 429/503 replaces that wait (still capped at
``max_delay``). After ``max_attempts`` attempts the event fails. Every attempt
is reported to ``on_delivery`` as a :class:`DeliveryRecord` (the webhook log).
A post may carry its own ``timeout`` (the application's ``webhook_timeout_secs``).

Native (``v2.*``) events are signed with the webhook's secret (HMAC); every
other event is in the Call Control envelope and, when the dispatcher has a
``signing_key``, carries Telnyx's two Ed25519 headers, signed per attempt
(:func:`~mediaserver.webhooks.envelope.sign_ed25519`).

When more than ``max_queue`` posts wait, the oldest waiting post of the most
backed-up URL is dropped (logged, counted), so a dead receiver cannot starve
the others. :meth:`WebhookDispatcher.stop` keeps delivering for up to its drain
timeout, then drops what is left (with an outbox: hands it back, counted as
dropped here) and logs it. The counters in
:class:`WebhookMetrics` keep ``published == delivered + failed + dropped +
elsewhere + pending``.

With an :attr:`WebhookDispatcher.outbox` (the server's: :mod:`mediaserver.webhooks.outbox`)
every post is also a row in the database, claimed by this node: stored as it
is queued (a post another node stored already is not sent here: it counts as
``elsewhere``), its outcome recorded after each attempt, handed back at stop
rather than lost. Posts another node left unfinished come in through
:meth:`WebhookDispatcher.resume`, from the attempt they had reached, when due.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mediaserver import __version__
from mediaserver.log import get_logger
from mediaserver.webhooks.envelope import (
    ALGORITHM_HEADER,
    DEFAULT_HMAC_ALGO,
    EVENT_HEADER,
    MAX_TRY,
    SIGNATURE_HEADER,
    Envelope,
    as_utc,
    encode_body,
    is_native_event,
    make_call_control_event,
    make_envelope,
    new_event_id,
    sign,
    sign_ed25519,
)
from mediaserver.webhooks.retry import backoff_delay, is_retryable_status, parse_retry_after
from mediaserver.webhooks.subscriptions import WebhookSubscription, subscription_wants

log = get_logger("webhooks")

__all__ = [
    "DeliveryRecord",
    "WebhookDispatcher",
    "WebhookMetrics",
    "backoff_delay",
    "is_retryable_status",
    "parse_retry_after",
]

Outcome = Literal["delivered", "retrying", "failed"]


# --- dispatch -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryRecord:
    """One attempt to post one event to one webhook: a line of the webhook log."""

    webhook_id: str
    url: str
    event_id: str
    event_type: str
    subject_sid: str  # the call or recording the event is about ("" when none)
    attempt: int  # from 1
    outcome: Outcome  # "retrying": this attempt failed and another will follow
    status_code: int | None  # None when no response came (timeout, connection error)
    error: str | None
    duration_ms: float
    at: datetime  # when the attempt started (UTC)
    retry_in: float | None = None  # seconds until the next attempt, when retrying
    envelope: Envelope | None = None  # the body posted (parsed), for logs that keep it
    failover: bool = False  # posted to a failover URL after the first URL failed


@dataclass
class WebhookMetrics:
    """Counters of posts (one per event and webhook); see the module doc's invariant."""

    published: int = 0
    delivered: int = 0
    failed: int = 0
    retried: int = 0
    dropped: int = 0
    failed_over: int = 0  # posts sent on to their failover URL (still pending, not failed)
    elsewhere: int = 0  # posts another node had stored already: that node sends them
    # Told of every attempt as it ends (the Prometheus latency histogram listens here).
    on_attempt: list[Callable[[DeliveryRecord], None]] = field(default_factory=list)


@dataclass
class QueuedPost:
    """One event on its way to one URL."""

    webhook_id: str
    url: str
    secret: str | None
    event_type: str
    event_id: str
    at: datetime
    subject_sid: str
    payload: dict[str, Any]
    failover_url: str | None = None  # where the post goes when every attempt at url failed
    timeout: float | None = None  # per attempt; the dispatcher's when None
    failover: bool = False  # this is the post sent on to a failover URL
    hmac_algo: str = DEFAULT_HMAC_ALGO  # the hash of the secret's HMAC
    row: int | None = None  # its outbox row, once stored
    attempts_done: int = 0  # attempts made before this node had it (taken over)
    due: datetime | None = None  # not posted before then (a taken-over retry)
    stored: asyncio.Task[bool] | None = field(default=None, repr=False, compare=False)

    def envelope(self, attempt: int) -> Envelope:
        """The body for ``attempt`` (from 1), in the envelope of the event's type."""
        if is_native_event(self.event_type):
            return make_envelope(
                self.event_type, self.webhook_id, self.payload,
                event_id=self.event_id, at=self.at, attempt=attempt,
            )  # fmt: skip
        return make_call_control_event(
            self.event_type, self.payload,
            event_id=self.event_id, occurred_at=self.at, attempt=attempt, delivered_to=self.url,
        )  # fmt: skip


@dataclass
class _Lane:
    """The posts waiting for one URL, served in order by at most one task."""

    url: str
    waiting: deque[QueuedPost] = field(default_factory=deque)
    current: QueuedPost | None = None
    task: asyncio.Task[None] | None = None


DeliveryHook = Callable[[DeliveryRecord], Awaitable[None]]


class PostOutbox(Protocol):
    """Where the dispatcher keeps its posts in the database (see the module doc)."""

    async def hold(self, post: QueuedPost) -> bool:
        """Store a fresh post claimed by this node; False: another node has it."""
        ...

    async def attempted(self, post: QueuedPost, record: DeliveryRecord) -> None:
        """Record an attempt's outcome (and when the next is due)."""
        ...

    async def moved(self, post: QueuedPost) -> None:
        """The post goes on to its failover URL (``post.url`` now)."""
        ...

    async def let_go(self, posts: list[QueuedPost], *, dropped: bool) -> None:
        """This node will not post these: handed back (stopping), or ``dropped``."""
        ...


class WebhookDispatcher:
    """Queues events for the matching webhooks and posts them in the background."""

    def __init__(
        self,
        subscriptions: Callable[[], Iterable[WebhookSubscription]],
        *,
        client: httpx.AsyncClient | None = None,
        max_attempts: int = 6,
        base_delay: float = 1.0,
        max_delay: float = 300.0,
        jitter: float = 0.25,
        timeout: float = 5.0,
        max_queue: int = 10000,
        max_concurrency: int = 8,
        on_delivery: DeliveryHook | None = None,
        rng: random.Random | None = None,
        signing_key: Ed25519PrivateKey | None = None,
    ) -> None:
        if not 1 <= max_attempts <= MAX_TRY + 1:
            raise ValueError(f"max_attempts must be 1-{MAX_TRY + 1}, got {max_attempts}")
        if base_delay < 0 or max_delay < 0 or timeout <= 0 or not 0 <= jitter <= 1:
            raise ValueError("delays must be >= 0, timeout > 0 and jitter within 0-1")
        if max_queue < 1 or max_concurrency < 1:
            raise ValueError("max_queue and max_concurrency must be at least 1")
        self._subscriptions = subscriptions
        self._client = client
        self._owns_client = client is None
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.jitter = jitter
        self.timeout = timeout
        self.max_queue = max_queue
        self._on_delivery = on_delivery
        self.signing_key = signing_key
        """Signs Call Control posts (Ed25519); the server sets it once its key is loaded."""
        self._rng = rng if rng is not None else random.Random()
        self._slots = asyncio.Semaphore(max_concurrency)
        self._lanes: dict[str, _Lane] = {}
        self._waiting = 0  # posts queued, not counting those in flight
        self._idle = asyncio.Event()
        self._idle.set()
        self._state: Literal["new", "running", "stopping", "stopped"] = "new"
        self.metrics = WebhookMetrics()
        self.outbox: PostOutbox | None = None
        """Set before :meth:`start` to keep every post in the database (module doc)."""
        self._chores: set[asyncio.Task[None]] = set()  # outbox writes in flight

    @property
    def pending(self) -> int:
        """Posts not yet finished: waiting plus in flight (or in back-off)."""
        return self._waiting + sum(1 for lane in self._lanes.values() if lane.current is not None)

    # -- publishing (synchronous, never blocks) --

    def publish(
        self,
        event_type: str,
        subject_sid: str,
        payload: Mapping[str, Any],
        *,
        event_id: str | None = None,
        at: datetime | None = None,
    ) -> int:
        """Queue ``event_type`` for every webhook that wants it; return how many were queued.

        ``subject_sid`` is the call or recording the event is about (for the log);
        the envelope's own ``sid`` is each webhook's. Never raises for a bad
        subscription list or payload: those are logged and nothing is queued.
        """
        snapshot = self._snapshot(event_type, payload)
        if snapshot is None:
            return 0
        try:
            targets = [s for s in self._subscriptions() if subscription_wants(s.events, event_type)]
        except Exception:
            log.exception("webhook subscriptions unavailable", event_type=event_type)
            return 0
        event_id = event_id if event_id is not None else new_event_id(event_type)
        at = as_utc(at)
        queued = 0
        for t in targets:
            post = QueuedPost(
                t.id, t.url, t.secret, event_type, event_id, at, subject_sid, snapshot,
                hmac_algo=t.hmac_algo,
            )  # fmt: skip
            queued += self._enqueue(post)
        return queued

    def publish_to(
        self,
        url: str,
        event_type: str,
        payload: Mapping[str, Any],
        *,
        secret: str | None = None,
        webhook_id: str = "",
        subject_sid: str = "",
        event_id: str | None = None,
        at: datetime | None = None,
        failover_url: str | None = None,
        timeout: float | None = None,
    ) -> str | None:
        """Queue one event for one URL (a Call Control app's); return its id, None if refused.

        ``failover_url``: where the event goes when every attempt at ``url``
        failed; ``timeout``: seconds each attempt may take (the dispatcher's
        own when None or not above 0)."""
        snapshot = self._snapshot(event_type, payload)
        if snapshot is None:
            return None
        event_id = event_id if event_id is not None else new_event_id(event_type)
        at = as_utc(at)
        post = QueuedPost(
            webhook_id, url, secret, event_type, event_id, at, subject_sid, snapshot,
            failover_url=failover_url or None,
            timeout=timeout if timeout is not None and timeout > 0 else None,
        )  # fmt: skip
        return event_id if self._enqueue(post) else None

    def _snapshot(self, event_type: str, payload: Mapping[str, Any]) -> dict[str, Any] | None:
        # A copy taken now: the caller may change its dict before the post goes out.
        try:
            snapshot: dict[str, Any] = json.loads(json.dumps(payload))
        except (TypeError, ValueError) as exc:
            log.error(
                "webhook payload is not JSON; event not sent", event_type=event_type, error=str(exc)
            )
            return None
        return snapshot

    def _enqueue(self, post: QueuedPost) -> bool:
        self.metrics.published += 1
        queued = self._queue(post)
        if queued and self.outbox is not None and self._state != "new":
            # Stored now, not when its turn comes: a post waiting behind a retry survives too.
            post.stored = asyncio.get_running_loop().create_task(self.outbox.hold(post))
        return queued

    def resume(self, post: QueuedPost) -> bool:
        """Queue a post taken over from the outbox (``row`` set; from attempt
        ``attempts_done + 1``, not before ``due``)."""
        self.metrics.published += 1
        return self._queue(post)

    def _queue(self, post: QueuedPost) -> bool:
        """Put ``post`` at the back of its URL's lane (False: dropped, the dispatcher stopped)."""
        if self._state == "stopped":
            self.metrics.dropped += 1
            log.warning(
                "webhook dispatcher stopped; event dropped",
                event_type=post.event_type,
                event_id=post.event_id,
                url=post.url,
            )
            return False
        if self._waiting >= self.max_queue:
            self._drop_oldest()
        lane = self._lanes.get(post.url)
        if lane is None:
            lane = self._lanes[post.url] = _Lane(post.url)
        lane.waiting.append(post)
        self._waiting += 1
        self._idle.clear()
        if self._state != "new" and lane.task is None:
            lane.task = asyncio.get_running_loop().create_task(self._serve(lane))
        return True

    def _drop_oldest(self) -> None:
        lane = max(self._lanes.values(), key=lambda lane: len(lane.waiting))
        victim = lane.waiting.popleft()
        self._waiting -= 1
        self.metrics.dropped += 1
        self._let_go([victim], dropped=True)
        log.warning(
            "webhook queue full; oldest event dropped",
            max_queue=self.max_queue,
            url=victim.url,
            event_type=victim.event_type,
            event_id=victim.event_id,
            dropped=self.metrics.dropped,
        )

    # -- lifecycle --

    def start(self) -> None:
        """Start posting (call from the event loop); events queued before wait until now."""
        if self._state != "new":
            return
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout, follow_redirects=False)
        self._state = "running"
        loop = asyncio.get_running_loop()
        for lane in self._lanes.values():
            lane.task = loop.create_task(self._serve(lane))

    async def wait_idle(self) -> None:
        """Return once nothing is waiting or in flight."""
        await self._idle.wait()

    async def stop(self, drain_timeout: float = 5.0) -> int:
        """Deliver what is queued for up to ``drain_timeout`` s, drop the rest; return dropped."""
        if self._state == "stopped":
            return 0
        if self._state == "running":
            self._state = "stopping"
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), drain_timeout)
        self._state = "stopped"
        left = [p for lane in self._lanes.values() for p in (lane.current, *lane.waiting) if p]
        tasks = [lane.task for lane in self._lanes.values() if lane.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if left:
            self.metrics.dropped += len(left)
            kept = self.outbox is not None
            log.warning(
                "webhook events handed back to the database at shutdown"
                if kept
                else "webhook events dropped at shutdown",
                count=len(left),
                events=[f"{p.event_type} {p.event_id} -> {p.url}" for p in left[:20]],
            )
            if self.outbox is not None:
                await self._keep(self.outbox.let_go(left, dropped=False), "hand posts back")
        if self._chores:
            await asyncio.gather(*self._chores, return_exceptions=True)
        self._lanes.clear()
        self._waiting = 0
        self._idle.set()
        if self._owns_client and self._client is not None:
            await self._client.aclose()
            self._client = None
        return len(left)

    # -- delivery (background) --

    async def _serve(self, lane: _Lane) -> None:
        """Post a lane's events one after another, in order, until it is empty."""
        try:
            while lane.waiting:
                lane.current = lane.waiting.popleft()
                self._waiting -= 1
                await self._deliver(lane.current)
                lane.current = None
        finally:
            lane.task = None
            if not lane.waiting and lane.current is None and self._lanes.get(lane.url) is lane:
                del self._lanes[lane.url]
            if not self._lanes:
                self._idle.set()

    async def _stored(self, post: QueuedPost) -> bool:
        """Whether this node posts ``post``: stored in the outbox as its own (or no outbox)."""
        if self.outbox is None or post.row is not None:
            return True
        if post.stored is None:  # queued before start
            post.stored = asyncio.get_running_loop().create_task(self.outbox.hold(post))
        try:
            return await post.stored
        except Exception:
            # The database failing must not lose the event: this node posts it from memory.
            log.exception("webhook outbox: could not store a post", event_id=post.event_id)
            return True

    async def _deliver(self, post: QueuedPost) -> None:
        """All the attempts for one post, until delivered or given up."""
        if not await self._stored(post):
            self.metrics.elsewhere += 1
            log.info(
                "webhook event posted by another node",
                event_type=post.event_type,
                event_id=post.event_id,
                url=post.url,
            )
            return
        if post.due is not None:
            await asyncio.sleep(max(0.0, (post.due - datetime.now(UTC)).total_seconds()))
        for attempt in range(post.attempts_done + 1, self.max_attempts + 1):
            envelope = post.envelope(attempt)
            body = encode_body(envelope)
            headers = {
                "Content-Type": "application/json",
                "User-Agent": f"mediaserver/{__version__}",
                EVENT_HEADER: post.event_type,
            }
            if post.secret:
                headers[SIGNATURE_HEADER] = sign(body, post.secret, post.hmac_algo)
                headers[ALGORITHM_HEADER] = post.hmac_algo
            if self.signing_key is not None and not is_native_event(post.event_type):
                headers.update(sign_ed25519(body, self.signing_key))
            started_at = datetime.now(UTC)
            started = time.monotonic()
            timeout = post.timeout if post.timeout is not None else self.timeout
            async with self._slots:
                status, error, retry_after, final = await self._attempt(
                    post.url, body, headers, timeout
                )
            duration_ms = (time.monotonic() - started) * 1000.0
            outcome: Outcome
            retry_in: float | None = None
            if status is not None and 200 <= status < 300:
                outcome = "delivered"
            elif final or attempt == self.max_attempts:
                outcome = "failed"
            else:
                outcome = "retrying"
                rand = self._rng.random()
                retry_in = backoff_delay(
                    attempt, self.base_delay, self.max_delay, self.jitter, rand
                )
                if retry_after is not None and status in (429, 503):
                    retry_in = min(retry_after, self.max_delay)
            record = DeliveryRecord(
                post.webhook_id,
                post.url,
                post.event_id,
                post.event_type,
                post.subject_sid,
                attempt,
                outcome,
                status,
                error,
                duration_ms,
                started_at,
                retry_in,
                envelope,
                post.failover,
            )
            await self._report(record)
            moved = await self._fail_over(post) if outcome == "failed" else False
            if self.outbox is not None and not moved:
                await self._keep(self.outbox.attempted(post, record), "record an attempt")
            if outcome == "delivered":
                self.metrics.delivered += 1
                log.debug("webhook delivered", **_fields(record))
                return
            if outcome == "failed":
                if moved:
                    log.warning("webhook failed; sent on to the failover URL", **_fields(record))
                    return
                self.metrics.failed += 1
                log.warning("webhook failed", **_fields(record))
                return
            self.metrics.retried += 1
            log.info("webhook attempt failed; retrying", **_fields(record))
            await asyncio.sleep(retry_in or 0.0)

    async def _fail_over(self, post: QueuedPost) -> bool:
        """Queue ``post`` for its failover URL, if it has one; whether it was."""
        if not post.failover_url or post.failover_url == post.url or self._state == "stopped":
            return False
        moved = replace(
            post, url=post.failover_url, failover_url=None, failover=True, attempts_done=0,
            due=None, stored=None,
        )  # fmt: skip
        if self.outbox is not None and moved.row is not None:
            await self._keep(self.outbox.moved(moved), "record a failover")
        if not self._queue(moved):
            return False
        self.metrics.failed_over += 1
        return True

    @staticmethod
    async def _keep(work: Awaitable[None], what: str) -> None:
        """Outbox bookkeeping: a database failure is logged, the post goes on from memory."""
        try:
            await work
        except Exception:
            log.exception(f"webhook outbox: could not {what}")

    def _let_go(self, posts: list[QueuedPost], *, dropped: bool) -> None:
        if self.outbox is not None:
            self._background(self.outbox.let_go(posts, dropped=dropped), "let posts go")

    def _background(self, work: Awaitable[None], what: str) -> None:
        """Outbox bookkeeping that the caller (synchronous) cannot await."""
        task = asyncio.get_running_loop().create_task(self._keep(work, what))
        self._chores.add(task)
        task.add_done_callback(self._chores.discard)

    async def _attempt(
        self, url: str, body: bytes, headers: dict[str, str], timeout: float
    ) -> tuple[int | None, str | None, float | None, bool]:
        """One POST: (status, error, Retry-After seconds, whether the failure is final)."""
        assert self._client is not None, "start() creates the client"
        try:
            # A total deadline: httpx's timeout is per phase (connect, each read, ...).
            async with asyncio.timeout(timeout):
                response = await self._client.post(
                    url, content=body, headers=headers, timeout=timeout
                )
        except (TimeoutError, httpx.TimeoutException):
            return None, f"timeout after {timeout:g} s", None, False
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            return None, f"bad URL: {exc}", None, True
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}".rstrip(": "), None, False
        status = response.status_code
        error = None if 200 <= status < 300 else f"HTTP {status}"
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        final = not (200 <= status < 300) and not is_retryable_status(status)
        return status, error, retry_after, final

    async def _report(self, record: DeliveryRecord) -> None:
        for listener in self.metrics.on_attempt:
            try:
                listener(record)
            except Exception:
                log.exception("webhook attempt listener failed", event_id=record.event_id)
        if self._on_delivery is None:
            return
        try:
            await self._on_delivery(record)
        except Exception:
            log.exception("webhook delivery log failed", event_id=record.event_id)


def _fields(record: DeliveryRecord) -> dict[str, Any]:
    """The record as structured-log fields."""
    fields = asdict(record)
    del fields["outcome"], fields["at"], fields["envelope"]
    fields["duration_ms"] = round(record.duration_ms, 1)
    return fields

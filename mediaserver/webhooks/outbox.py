"""The dispatcher's posts kept in the shared database, and those of dead nodes taken over.

:class:`DeliveryClaims` is the :class:`~mediaserver.webhooks.delivery.PostOutbox`
of the server's dispatcher, over the store's outbox
(:mod:`mediaserver.store.outbox`, which explains the claims and leases). The
dispatcher posts this node's fresh events at once from memory; this module
stores each one claimed by this node before its first attempt and records
every outcome. Every ``lease / 3`` seconds it renews the claims on the rows
this node holds and claims rows no live node holds (a dead node's, or this
node's previous process's), which the dispatcher then posts from the attempt
they had reached, when due. Finished rows are pruned after :data:`KEEP_FINISHED`.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from mediaserver.log import get_logger
from mediaserver.store import OutboxPost, OutboxRow, Store
from mediaserver.store.outbox import State, event_key
from mediaserver.webhooks.delivery import DeliveryRecord, QueuedPost, WebhookDispatcher

log = get_logger("webhooks")

KEEP_FINISHED = timedelta(days=1)
"""How long a finished post stays: the same event published again meanwhile (by a
node reloading its config later than the others) is not posted twice."""
_PRUNE_EVERY = 600.0  # seconds between prunes
_CLAIM_BATCH = 100  # rows taken over per look


class DeliveryClaims:
    """This node's claims on webhook posts in the shared database."""

    def __init__(self, store: Store, dispatcher: WebhookDispatcher, lease: float) -> None:
        """``lease``: seconds a claim holds without renewal (``node.lease``)."""
        if lease <= 0:
            raise ValueError("the lease must be above 0 seconds")
        self._store = store
        self._dispatcher = dispatcher
        self.lease = lease
        self._held: set[int] = set()  # rows this node's dispatcher has in memory
        self._started = store.db.now()
        self._task: asyncio.Task[None] | None = None
        self.taken_over = 0
        """Rows claimed from a dead node (or this node's previous process)."""

    # -- the dispatcher's outbox --

    async def hold(self, post: QueuedPost) -> bool:
        row = await self._store.outbox.insert(
            OutboxPost(
                event_key(post.event_id, post.webhook_id, post.url), post.webhook_id, post.url,
                post.secret, post.hmac_algo, post.event_type, post.event_id, post.subject_sid,
                post.payload, post.at, post.failover_url, post.timeout, post.failover,
            ),
            self.lease,
        )  # fmt: skip
        if row is None:
            return False
        post.row = row
        self._held.add(row)
        return True

    async def attempted(self, post: QueuedPost, record: DeliveryRecord) -> None:
        if post.row is None:
            return
        state: State = "pending" if record.outcome == "retrying" else record.outcome
        await self._store.outbox.attempted(post.row, record.attempt, state, record.retry_in)
        if state != "pending":
            self._held.discard(post.row)

    async def moved(self, post: QueuedPost) -> None:
        if post.row is not None:
            await self._store.outbox.moved(post.row, post.url)

    async def let_go(self, posts: list[QueuedPost], *, dropped: bool) -> None:
        stored = [p.stored for p in posts if p.stored is not None]
        await asyncio.gather(*stored, return_exceptions=True)  # rows still being written
        rows = [p.row for p in posts if p.row is not None]
        self._held.difference_update(rows)
        if dropped:
            for post in posts:
                if post.row is not None:
                    await self._store.outbox.attempted(post.row, post.attempts_done, "dropped")
        else:
            await self._store.outbox.release(rows)

    # -- renewing and taking over --

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        period = self.lease / 3
        next_prune = 0.0
        loop = asyncio.get_running_loop()
        while True:
            try:
                await self.look()
                if loop.time() >= next_prune:
                    next_prune = loop.time() + _PRUNE_EVERY
                    await self._store.outbox.prune(self._store.db.now() - KEEP_FINISHED)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("webhook outbox: renewing or taking over claims failed")
            await asyncio.sleep(period)

    async def look(self) -> int:
        """Renew this node's claims, then take over unheld rows; how many were taken."""
        if self._held:
            await self._store.outbox.renew(self._held, self.lease)
        taken = 0
        while True:
            rows = await self._store.outbox.claim(self.lease, self._started, _CLAIM_BATCH)
            for row in rows:
                self._held.add(row.id)
                self._dispatcher.resume(self._post(row))
            taken += len(rows)
            if len(rows) < _CLAIM_BATCH:
                break
        if taken:
            self.taken_over += taken
            log.info("webhook posts taken over from the database", count=taken)
        return taken

    def _post(self, row: OutboxRow) -> QueuedPost:
        # Attempts left even if this node allows fewer than the one that started it.
        done = min(row.attempts, self._dispatcher.max_attempts - 1)
        return QueuedPost(
            row.webhook_id, row.url, row.secret, row.event_type, row.event_id, row.event_at,
            row.subject_sid, row.payload, failover_url=row.failover_url, timeout=row.timeout,
            failover=row.failover, hmac_algo=row.hmac_algo, row=row.id, attempts_done=done,
            due=row.due_at,
        )  # fmt: skip

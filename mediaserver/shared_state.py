"""Following what other nodes change in a shared database.

Several servers (nodes) may share one PostgreSQL database. Routing and the
webhook targets are read from memory on every call and event, so a scenario,
a number attachment, a webhook or a Call Control application created through
one node's API must reach
the memory of the others. The store notifies a channel in the transaction
that makes such a change (PostgreSQL ``NOTIFY``, delivered at commit);
:func:`follow` LISTENs and re-reads what changed: the API scenarios and the
attached numbers (:meth:`mediaserver.catalog.Catalog.refresh`), the stored
webhooks (:meth:`mediaserver.webhooks.targets.WebhookTargets.refresh`), the
Call Control applications
(:meth:`mediaserver.callcontrol.applications.CallControlApplications.load`). On
SQLite there is one server and nothing to follow.

A burst of notifications gives at most one re-read running and one more
after it (:class:`Rereader`), so the last change is always read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from mediaserver.log import get_logger
from mediaserver.store import Store
from mediaserver.store.call_control import APPLICATIONS_CHANNEL
from mediaserver.store.scenarios import CATALOG_CHANNEL
from mediaserver.store.webhooks import WEBHOOKS_CHANNEL

log = get_logger("shared_state")


class Rereader:
    """Runs ``reread`` when poked: never two at once, and once more if poked meanwhile."""

    def __init__(self, what: str, reread: Callable[[], Awaitable[None]]) -> None:
        self.what = what
        self._reread = reread
        self._task: asyncio.Task[None] | None = None
        self._again = False
        self._stopped = False
        self.done = 0
        """Re-reads finished (tests wait on it)."""

    def poke(self) -> None:
        if self._stopped:
            return  # the server is stopping: nothing left to keep up to date
        if self._task is not None:
            self._again = True
            return
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        try:
            while True:
                self._again = False
                try:
                    await self._reread()
                except Exception:
                    log.exception("re-reading a change of another node failed", what=self.what)
                else:
                    # (info: rare, and says when another node's change took effect here)
                    log.info("re-read a change of the shared database", what=self.what)
                self.done += 1
                if not self._again:
                    return
        finally:
            self._task = None

    async def stop(self) -> None:
        self._stopped = True
        task = self._task
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def follow(
    store: Store,
    catalog: Callable[[], Awaitable[None]],
    webhooks: Callable[[], Awaitable[None]],
    applications: Callable[[], Awaitable[None]],
) -> list[Rereader]:
    """Re-read the catalog, the webhooks and the Call Control applications whenever
    another node changes them."""
    followed = [
        (CATALOG_CHANNEL, Rereader("catalog", catalog)),
        (WEBHOOKS_CHANNEL, Rereader("webhooks", webhooks)),
        (APPLICATIONS_CHANNEL, Rereader("applications", applications)),
    ]
    for channel, rereader in followed:
        await store.db.listen(channel, rereader.poke)
    return [rereader for _, rereader in followed]

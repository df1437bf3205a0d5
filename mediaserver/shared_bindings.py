"""Registered users found from every node sharing a database.

Each node's registrar (:mod:`mediaserver.sip.registrar`) is in its memory: a
node dialing a user who registered on another node would not find her. So,
on a shared (PostgreSQL) database, after each REGISTER a node takes it writes
that user's bindings as they are now (:meth:`SharedBindings.changed`, in the
background: the REGISTER's answer never waits on the database), and a node
whose own registrar has no binding of a user asks the others' through
:meth:`SharedBindings.elsewhere` (:mod:`mediaserver.store.bindings`).

How the call then reaches the phone is the dialer's
(:meth:`mediaserver.calls.dialer.Dialer`): a binding made over UDP is sent to
where its REGISTER came from (the phone, or the Kamailio in front of the
nodes), which any node can reach; one made over a connection (TCP, TLS,
WebSocket) can only be used by the node holding the connection, so the call is
refused naming that node. On SQLite there is one server: nothing is written.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

from mediaserver.log import get_logger
from mediaserver.sip.registrar import Binding
from mediaserver.sip.transport import Peer
from mediaserver.store import Store
from mediaserver.store.bindings import StoredBinding

log = get_logger("registrar")


class SharedBindings:
    """This node's bindings written to the shared database; the other nodes' read there."""

    def __init__(self, store: Callable[[], Store | None]) -> None:
        self._store = store
        self._pending: dict[str, list[StoredBinding]] = {}  # by user: the latest to write
        self._writer: asyncio.Task[None] | None = None

    def _shared(self) -> Store | None:
        store = self._store()
        if store is None or store.db.dialect.name != "postgresql":
            return None  # an SQLite file has one server: nobody else to tell
        return store

    async def start(self) -> None:
        """Drop what this node wrote before it (re)started: its registrar starts empty."""
        store = self._shared()
        if store is not None:
            await store.bindings.forget_node()

    def changed(self, user: str, bindings: list[Binding[Peer]]) -> None:
        """A REGISTER of ``user`` was taken here: these are the user's bindings now."""
        if self._shared() is None:
            return
        self._pending[user] = [_stored(b) for b in bindings]
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._write())

    async def _write(self) -> None:
        try:
            while self._pending:
                user = next(iter(self._pending))
                bindings = self._pending.pop(user)
                store = self._shared()
                if store is None:
                    self._pending.clear()
                    return
                try:
                    await store.bindings.replace(user, bindings)
                except Exception:
                    log.exception("could not share a user's bindings", user=user)
        finally:
            self._writer = None

    async def elsewhere(self, user: str) -> list[StoredBinding]:
        """``user``'s live bindings on the other nodes, best first (none on SQLite)."""
        store = self._shared()
        return [] if store is None else await store.bindings.elsewhere(user)

    async def stop(self) -> None:
        """Finish the writes under way (before the store closes)."""
        writer = self._writer
        if writer is not None:
            await asyncio.gather(writer, return_exceptions=True)


def _stored(binding: Binding[Peer]) -> StoredBinding:
    return StoredBinding(
        node="",  # the store stamps this node's name
        user=binding.user,
        contact=binding.contact,
        transport=binding.transport,
        source_host=binding.source.host,
        source_port=binding.source.port,
        q=binding.q,
        expires_at=datetime.fromtimestamp(binding.expires_at, UTC),
        refreshed_at=datetime.fromtimestamp(binding.refreshed_at, UTC),
    )

"""The registrar bindings of every node sharing the database.

Theory of operation. Each node's registrar keeps its bindings in memory; after
every REGISTER it took, the node writes that user's bindings as they are now
(:meth:`RegistrarBindings.replace`: its own rows for the user, deleted and
written again in one transaction). A node that finds no binding of a user in
its own registrar asks :meth:`RegistrarBindings.elsewhere`: the live bindings
other nodes hold, best first (highest q, then most recently refreshed). At
start a node drops its rows (:meth:`RegistrarBindings.forget_node`): its
registrar starts empty and the phones register again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from mediaserver.store.db import Database, Row, from_ms, to_ms

_COLUMNS = (
    "node, user_name, contact, transport, source_host, source_port, q, expires_at, refreshed_at"
)


@dataclass(frozen=True)
class StoredBinding:
    """One contact of a user, registered on ``node``."""

    node: str
    user: str
    contact: str
    transport: str  # of the REGISTER as the node received it: udp, tcp, tls, ws, wss
    source_host: str  # where the REGISTER came from (the phone, or the proxy before the node)
    source_port: int
    q: float
    expires_at: datetime
    refreshed_at: datetime


class RegistrarBindings:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def replace(self, user: str, bindings: Sequence[StoredBinding]) -> None:
        """This node's bindings of ``user`` are now ``bindings`` (none: unregistered)."""
        async with self.db.transaction() as tx:
            await tx.execute(
                "DELETE FROM registrar_bindings WHERE node = ? AND user_name = ?",
                (self.db.node, user),
            )
            for b in bindings:
                await tx.execute(
                    f"INSERT INTO registrar_bindings ({_COLUMNS})"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (node, user_name, contact) DO NOTHING",
                    (
                        self.db.node, user, b.contact, b.transport, b.source_host,
                        b.source_port, b.q, to_ms(b.expires_at), to_ms(b.refreshed_at),
                    ),
                )  # fmt: skip

    async def elsewhere(self, user: str) -> list[StoredBinding]:
        """The live bindings of ``user`` held by other nodes, best first."""
        rows = await self.db.fetch_all(
            f"SELECT {_COLUMNS} FROM registrar_bindings"
            " WHERE user_name = ? AND node != ? AND expires_at > ?"
            " ORDER BY q DESC, refreshed_at DESC",
            (user, self.db.node, to_ms(self.db.now())),
        )
        return [_binding(row) for row in rows]

    async def forget_node(self) -> int:
        """Drop this node's rows (it starts with an empty registrar); how many."""
        async with self.db.transaction() as tx:
            return await tx.execute(
                "DELETE FROM registrar_bindings WHERE node = ?", (self.db.node,)
            )


def _binding(row: Row) -> StoredBinding:
    return StoredBinding(
        node=row["node"],
        user=row["user_name"],
        contact=row["contact"],
        transport=row["transport"],
        source_host=row["source_host"],
        source_port=int(row["source_port"]),
        q=float(row["q"]),
        expires_at=from_ms(row["expires_at"]),
        refreshed_at=from_ms(row["refreshed_at"]),
    )

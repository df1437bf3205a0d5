"""What every peer process of the harness shares: ``with`` and ``async with``.

A peer (:class:`~tests.support.baresip.Baresip`,
:class:`~tests.support.linphone.Linphone`,
:class:`~tests.support.sipp.SippBackground`) defines ``start()``, which
returns the peer once it runs, and ``close()``, which always stops it and
cleans up. The async forms run both in a thread so a test's event loop (a
server in the same process) keeps turning meanwhile.
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Self


class PeerProcess:
    def start(self) -> Self:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.close)

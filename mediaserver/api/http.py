"""The HTTP listener: uvicorn inside the server's own event loop.

The API shares the loop with SIP and media (DESIGN: one process, one loop),
so uvicorn is not run with its own ``run()``: :class:`HttpListener` binds
the socket itself (a bind failure is an ``OSError`` the CLI reports, and
port 0 is resolved before the start-up line is printed), then runs
uvicorn's ``serve()`` as a task on the running loop with signal capture
turned off (the CLI owns SIGINT/SIGTERM and the drain logic). Lifespan
events are off (the server object is already started when HTTP opens) and
so are uvicorn's own logging set-up and access log: its log records are
forwarded to structlog by :class:`StructlogBridge`, and each request is
logged once at debug level by the app (``mediaserver.api.app``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator
from typing import Any

import uvicorn

from mediaserver.log import get_logger

log = get_logger("http")

STOP_GRACE = 5  # seconds open requests may take to finish at shutdown


class StructlogBridge(logging.Handler):
    """Forwards stdlib logging records (uvicorn's) to structlog."""

    def __init__(self) -> None:
        super().__init__()
        self._log = get_logger("uvicorn")

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            method = {
                logging.DEBUG: self._log.debug,
                logging.INFO: self._log.info,
                logging.WARNING: self._log.warning,
            }.get(record.levelno, self._log.error)
            if record.exc_info:
                method(message, logger=record.name, exc_info=record.exc_info)
            else:
                method(message, logger=record.name)
        except Exception:
            self.handleError(record)


def _bridge_uvicorn_logging() -> None:
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        if not any(isinstance(h, StructlogBridge) for h in logger.handlers):
            logger.addHandler(StructlogBridge())
        logger.propagate = False
    # "Started server process", "Waiting for application startup": not worth a line each.
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its signal handlers: the CLI owns SIGINT and SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host`` (an address or a name) and ``port``."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    if not infos:
        raise OSError(f"cannot resolve {host!r}")
    family, _, _, _, address = infos[0]
    return socket.create_server(address[:2], family=family)


class HttpListener:
    """One ASGI app served on ``host:port`` in the current event loop."""

    def __init__(self, app: Any, host: str, port: int) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._server: _EmbeddedServer | None = None
        self._task: asyncio.Task[None] | None = None
        self._socket: socket.socket | None = None

    @property
    def address(self) -> str:
        """``HOST:PORT`` as bound (port 0 resolved), IPv6 hosts in brackets."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    async def start(self) -> str:
        """Bind and start serving; the bound address. OSError when the port is taken."""
        _bridge_uvicorn_logging()
        sock = _bind(self.host, self.port)
        self._socket = sock
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            loop="none",
            lifespan="off",
            log_config=None,
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=STOP_GRACE,
        )
        server = self._server = _EmbeddedServer(config)
        self._task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
        while not server.started:
            if self._task.done():
                self._task.result()  # raises what stopped it
                raise OSError(f"HTTP server on {self.address} stopped while starting")
            await asyncio.sleep(0.005)
        log.info("http listening", address=self.address)
        return self.address

    async def stop(self) -> None:
        """Stop accepting, let open requests finish (a few seconds at most), close."""
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self._task), STOP_GRACE + 5)
        except TimeoutError:
            self._server.force_exit = True
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        except Exception:
            log.exception("http server stopped with an error")
        if self._socket is not None:
            self._socket.close()
        self._server = None
        self._task = None
        log.info("http stopped")

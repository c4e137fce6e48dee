"""One port that serves TLS and plain HTTP, told apart by each connection's first byte.

Amplify needs ``https://``/``wss://`` (see :mod:`local.tls`), while the built-in UI opens at
``http://localhost:PORT`` with no certificate prompt and reaches the same port with ``http://`` and
``ws://``. A TLS connection always starts with a handshake record, whose first byte is the
content type ``handshake`` = 22 (0x16) (RFC 8446 §5.1, RFC 5246 §6.2.1); an HTTP/1.x request
starts with a method name in ASCII letters. So the listener peeks at the first byte without
consuming it and hands the socket to the same aiohttp server, wrapped in TLS or not.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Callable

log = logging.getLogger("local.listener")

TLS_HANDSHAKE = 0x16
#: How long a new connection may stay silent before it is dropped.
FIRST_BYTE_TIMEOUT = 10.0


class DualProtocolListener:
    """Accepts on ``sock``; each connection goes to ``protocol_factory`` over TLS or plain."""

    def __init__(
        self,
        sock: socket.socket,
        protocol_factory: Callable[[], asyncio.Protocol],
        ssl_context: ssl.SSLContext,
    ) -> None:
        self._sock = sock
        self._factory = protocol_factory
        self._ssl = ssl_context
        self._accepting: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self._accepting = asyncio.get_running_loop().create_task(self._accept_forever())

    async def close(self) -> None:
        """Stop accepting; connections already handed over belong to the aiohttp server."""
        for task in (self._accepting, *self._pending):
            if task is not None:
                task.cancel()
        for task in (self._accepting, *self._pending):
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._sock.close()

    async def _accept_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, _ = await loop.sock_accept(self._sock)
            except OSError as err:  # e.g. EMFILE: keep serving the connections we have
                log.warning("accept failed: %s", err)
                await asyncio.sleep(0.1)
                continue
            conn.setblocking(False)
            task = loop.create_task(self._hand_over(conn))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def _hand_over(self, conn: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        try:
            first = await asyncio.wait_for(_peek(loop, conn), FIRST_BYTE_TIMEOUT)
            if not first:
                conn.close()
                return
            tls = first[0] == TLS_HANDSHAKE
            await loop.connect_accepted_socket(
                self._factory,
                conn,
                ssl=self._ssl if tls else None,
                ssl_handshake_timeout=FIRST_BYTE_TIMEOUT if tls else None,
            )
        except (TimeoutError, OSError, ssl.SSLError) as err:
            log.debug("dropped a connection before its first request: %s", err)
            conn.close()
        except asyncio.CancelledError:
            conn.close()
            raise


async def _peek(loop: asyncio.AbstractEventLoop, conn: socket.socket) -> bytes:
    """The connection's first byte, left in the socket for whoever reads it next."""
    while True:
        try:
            return conn.recv(1, socket.MSG_PEEK)
        except BlockingIOError:
            readable: asyncio.Future[None] = loop.create_future()
            loop.add_reader(conn.fileno(), _set_once, readable)
            try:
                await readable
            finally:
                loop.remove_reader(conn.fileno())


def _set_once(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)

"""Serve virtual controllers over sockets: one bumble controller per connected host process.

bumble's stock ``tcp-server:`` transport serves a single client and does not clean up when the
client dies (its controller's HCI Reset is a no-op), so a peripheral stays "connected" to a dead
process and the next client cannot find it (see docs/simulation-backend.md). :class:`HciServer`
instead gives every accepted socket its own :class:`~simulators.radio.SimController` on the shared
``LocalLink`` and, when the socket closes for whatever reason (clean exit, crash, kill), takes that
controller off the air: its peers see their links end and go back to advertising.

The simulator server (``relieve sim serve``) is built on this; tests use it directly::

    async with await HciServer.start(link, "unix:/tmp/relieve.sock") as server:
        backend.use_transport(server.client_spec)
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Self, cast

from bumble import core
from bumble.transport.common import PacketParser

from simulators.radio import SimController, detach_controller

if TYPE_CHECKING:
    from types import TracebackType

    from bumble.link import LocalLink

__all__ = ["HciServer"]

logger = logging.getLogger(__name__)

_session_numbers = itertools.count(1)


class _SocketSink:
    """Where a controller sends HCI packets: the socket of the host it serves."""

    def __init__(self, transport: asyncio.WriteTransport) -> None:
        self.transport = transport

    def on_packet(self, packet: bytes) -> None:
        if not self.transport.is_closing():
            self.transport.write(packet)


class _HciSession(asyncio.Protocol):
    """One connected host process and the virtual controller it owns."""

    def __init__(self, link: LocalLink, sessions: set[_HciSession]) -> None:
        self.link = link
        self.sessions = sessions
        self.name = f"hci-client-{next(_session_numbers)}"
        self.controller: SimController | None = None
        self.transport: asyncio.Transport | None = None
        self.parser: PacketParser | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast("asyncio.Transport", transport)  # a stream socket's transport
        self.controller = SimController(self.name, link=self.link)
        self.controller.host = _SocketSink(self.transport)
        self.parser = PacketParser(self.controller)
        self.sessions.add(self)
        logger.debug("%s connected", self.name)

    def data_received(self, data: bytes) -> None:
        if self.parser is None:
            return
        try:
            self.parser.feed_data(data)
        except core.InvalidPacketError:
            logger.warning("%s sent something that is not HCI; closing it", self.name)
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.sessions.discard(self)
        controller, self.controller = self.controller, None
        if controller is not None:
            logger.debug("%s disconnected (%r); its controller leaves the air", self.name, exc)
            detach_controller(controller)
            controller.host = None

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class HciServer:
    """Accepts host processes on a unix or TCP socket; each gets a controller on ``link``."""

    def __init__(
        self,
        link: LocalLink,
        server: asyncio.AbstractServer,
        sessions: set[_HciSession],
        client_spec: str,
        path: str | None,
    ) -> None:
        self.link = link
        self.client_spec = client_spec  # the transport string a host passes to use_transport()
        self.sessions = sessions
        self._server = server
        self._path = path

    @classmethod
    async def start(cls, link: LocalLink, listen: str) -> HciServer:
        """Listen on ``unix:/path`` or ``tcp-server:host:port`` (port 0 picks a free one)."""
        scheme, _, where = listen.partition(":")
        loop = asyncio.get_running_loop()
        sessions: set[_HciSession] = set()

        def factory() -> _HciSession:
            return _HciSession(link, sessions)

        if scheme in ("unix", "unix-server") and where:
            server = await loop.create_unix_server(factory, where)
            hci_server = cls(link, server, sessions, f"unix:{where}", where)
        elif scheme in ("tcp", "tcp-server") and where:
            host, _, port = where.rpartition(":")
            server = await loop.create_server(factory, host or "127.0.0.1", int(port))
            bound_host, bound_port = server.sockets[0].getsockname()[:2]
            if bound_host in ("0.0.0.0", "::", ""):  # noqa: S104 - reporting, not binding
                bound_host = "127.0.0.1"
            client_spec = f"tcp-client:{bound_host}:{bound_port}"
            hci_server = cls(link, server, sessions, client_spec, None)
        else:
            raise ValueError(
                f"cannot listen on {listen!r}: use 'unix:/path/to/socket' or "
                "'tcp-server:127.0.0.1:9100'"
            )
        logger.info("serving virtual controllers at %s", hci_server.client_spec)
        return hci_server

    async def serve_forever(self) -> None:
        """Serve until cancelled (the simulator server's main loop); then close."""
        try:
            await self._server.serve_forever()
        finally:
            await self.close()

    async def close(self) -> None:
        """Stop accepting, hang up on every host (their controllers leave the air)."""
        self._server.close()
        for session in list(self.sessions):
            session.close()
        await self._server.wait_closed()
        # Closing a transport reports connection_lost a loop turn later; run those now.
        for session in list(self.sessions):
            session.connection_lost(None)
        self._remove_socket_file()

    def _remove_socket_file(self) -> None:
        # A socket file's unlink is a metadata-only, local operation: fine on the loop thread.
        if self._path is not None:
            Path(self._path).unlink(missing_ok=True)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

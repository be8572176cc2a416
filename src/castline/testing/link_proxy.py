"""A TCP link that a fault drill can cut: a proxy on loopback between two peers.

The uplink tests and benchmarks route a plant's leaf connection through it; `cut()` closes
the listener and every open connection, as a broken WAN link would, and `open()` lets the
peer connect again.
"""

from __future__ import annotations

import asyncio

from castline.messaging.broker import free_port


class LinkProxy:
    """Forwards 127.0.0.1:`port` to 127.0.0.1:`target_port` until it is cut."""

    def __init__(self, target_port: int) -> None:
        self.port = free_port()
        self.target_port = target_port
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._pipes: set[asyncio.Future[tuple[None, None]]] = set()

    async def open(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        self._writers.clear()
        await asyncio.gather(*self._pipes, return_exceptions=True)
        await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers += [writer, up_writer]
        pipes = asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        self._pipes.add(pipes)
        await pipes
        self._pipes.discard(pipes)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()

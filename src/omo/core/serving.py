"""uvicorn's HTTP protocol with one socket write per answer instead of one per ASGI message.

uvicorn writes a response's head when the app sends `http.response.start` and its body when
the app sends `http.response.body`: two `send()` system calls, and two TCP segments on the
wire, for every small JSON answer. On loopback a `send()` costs about as much CPU as a
light endpoint's own Python. Here the protocol's transport keeps what is written during one
turn of the event loop and hands it to the socket in one write at the end of that turn, so
a head and a body sent one after the other (as every app does) leave together. Nothing waits
longer than the current turn; order is kept; closing first writes what is kept. A connection
upgraded to a WebSocket goes on with the socket's own transport.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class _CoalescingTransport(asyncio.Transport):
    """A transport that forwards everything to the real one, but joins the writes made in
    one turn of the loop into a single write."""

    def __init__(self, transport: asyncio.Transport) -> None:
        super().__init__()
        self._transport = transport
        self._pending: list[bytes] = []
        self._loop = asyncio.get_running_loop()

    # -- writes ------------------------------------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(data if isinstance(data, bytes) else bytes(data))

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        if not pending or self._transport.is_closing():
            return
        self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def abort(self) -> None:
        self._pending = []
        self._transport.abort()

    def write_eof(self) -> None:
        self._flush()
        self._transport.write_eof()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(len(d) for d in self._pending)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def unwrap(self) -> asyncio.Transport:
        """The socket's own transport, with what this one kept written to it first."""
        self._flush()
        return self._transport

    # -- everything else is the real transport's ---------------------------------------------

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()


class OneWriteHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol on a transport that joins a turn's writes."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_CoalescingTransport(transport))

    def handle_websocket_upgrade(self) -> None:
        # A WebSocket writes frames as they come (the gateway decides when to batch them):
        # its protocol gets the socket's own transport, as with plain uvicorn.
        coalescing = self.transport
        if isinstance(coalescing, _CoalescingTransport):
            self.transport = coalescing.unwrap()
        super().handle_websocket_upgrade()

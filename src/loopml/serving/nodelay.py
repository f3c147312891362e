"""uvicorn's HTTP protocol with ``TCP_NODELAY`` on every connection.

``loopml serve`` binds the socket itself (to report the port it took) and
hands uvicorn its descriptor; uvicorn then rebuilds the socket as a Unix
one, so asyncio never sets ``TCP_NODELAY`` on the connections it accepts.
Nagle's algorithm then holds the body of each answer (written after its
headers) until the client acknowledges the headers, and a keep-alive
client's delayed ACK adds about 40 ms to every request at concurrency 1.
This protocol sets the option itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class NoDelayHttpToolsProtocol(HttpToolsProtocol):
    """:class:`HttpToolsProtocol` that turns Nagle's algorithm off."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Set ``TCP_NODELAY`` (TCP sockets only), then as uvicorn does."""
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):  # a Unix socket has no such option
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)

"""Listening sockets, optionally shared by several processes (SO_REUSEPORT), for ``serve --workers``.

A minimal stand-in until the listener layer (listeners.py) owns binding:
with ``reuse_port`` every worker binds the same port and the Linux kernel
spreads new connections over them (by a hash of the connection's
addresses). Where SO_REUSEPORT does not exist (Windows), asking for it is
an `OSError` that says so; on the BSDs and macOS the option exists but the
kernel does not balance, so one worker would take most connections.
"""

from __future__ import annotations

import socket

import trio

__all__ = ["open_listeners"]


async def open_listeners(port: int, host: str, *, backlog: int | None = None,
                         reuse_port: bool = False) -> list[trio.SocketListener]:
    if not reuse_port:
        return await trio.open_tcp_listeners(port, host=host, backlog=backlog)
    if not hasattr(socket, "SO_REUSEPORT"):
        raise OSError("SO_REUSEPORT is not available on this platform: serve --workers needs it")
    listeners = []
    infos = await trio.socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    try:
        for family, kind, proto, _, address in infos:
            sock = trio.socket.socket(family, kind, proto)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                await sock.bind(address)
                sock.listen(backlog if backlog is not None else socket.SOMAXCONN)
            except BaseException:
                sock.close()
                raise
            listeners.append(trio.SocketListener(sock))
    except BaseException:
        for listener in listeners:
            listener.socket.close()
        raise
    return listeners

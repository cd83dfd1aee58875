"""Claiming a host and port for the HTTP servers run with uvicorn (control plane, reviewer page) before
anything is announced or started. A taken port is the user's to fix, so it is a ConfigError naming the
settings; Ray Serve's bind failure (serving.runner) becomes the same error."""

from __future__ import annotations

import socket
from typing import Any

from roomsight.errors import ConfigError

MAX_PORT = 65535  # every port setting and --port option is checked against it


def cannot_listen(host: str, port: int, section: str,
                  reason: str = "the address is in use or not this machine's", fix: str | None = None) -> ConfigError:
    """`fix` says what to change, when that is not `section`'s host and port settings (the demo's --port)."""
    return ConfigError(f"cannot listen on {host}:{port}: {reason} "
                       f"({fix or f'{section}.host, {section}.port; --host, --port'})")


def listen(host: str, port: int, section: str, fix: str | None = None) -> socket.socket:
    """A socket bound to host:port and listening, or a ConfigError naming `section`'s host and port settings."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET  # as uvicorn chooses it
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: a restart need not wait out TIME_WAIT
    # Never SO_REUSEPORT: with it the bind would succeed beside a listener that set it too (Ray Serve's proxy).
    try:
        sock.bind((host, port))
        sock.listen()
    except OSError as exc:
        sock.close()
        raise cannot_listen(host, port, section, (exc.strerror or str(exc)).lower(), fix) from None
    return sock


def check_free(host: str, port: int, section: str, fix: str | None = None) -> None:
    """For servers that bind for themselves (Ray Serve's proxy, the SMTP sink): a taken port found now
    rather than after minutes of work, held by any listener, SO_REUSEPORT or not. Another process may
    still take it in between."""
    listen(host, port, section, fix).close()


def serve_http(app: Any, sock: socket.socket) -> None:
    """Run the ASGI `app` with uvicorn on the already-bound `sock` until Ctrl-C."""
    import uvicorn

    uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])

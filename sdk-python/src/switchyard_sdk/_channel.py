"""Turns a Switchyard URL into a grpc.aio channel.

Invariant: ``http://host:port`` (or a bare ``host:port``) gives a plaintext HTTP/2 channel,
``https://host:port`` a TLS one with the system roots; the channel's own reconnect backoff
is bounded to 100 ms … 5 s so that a restarted engine is found again quickly.
Must be called on the event loop that will use the channel.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import grpc

CHANNEL_OPTIONS: list[tuple[str, int]] = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 5000),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
]


def parse_url(url: str) -> tuple[str, bool]:
    """Return (grpc target "host:port", use_tls)."""
    if "://" not in url:
        url = "http://" + url
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https", "grpc", "grpcs"):
        raise ValueError(f"unsupported Switchyard URL scheme {parts.scheme!r} in {url!r}")
    if not parts.hostname:
        raise ValueError(f"Switchyard URL {url!r} has no host")
    tls = parts.scheme in ("https", "grpcs")
    port = parts.port or (443 if tls else 49134)
    host = parts.hostname
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    return f"{host}:{port}", tls


def open_channel(url: str) -> grpc.aio.Channel:
    target, tls = parse_url(url)
    if tls:
        return grpc.aio.secure_channel(target, grpc.ssl_channel_credentials(), options=CHANNEL_OPTIONS)
    return grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS)

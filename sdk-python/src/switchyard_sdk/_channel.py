"""Turns a Switchyard URL into a grpc.aio channel, and names transport failures.

Invariant: a URL is checked before any I/O, with the grammar all three SDKs share:
``http://HOST:PORT`` and bare ``HOST:PORT`` mean plaintext gRPC, a missing port means
49134; ``https://`` is refused until the SDK speaks TLS; ``ws://``, ``wss://``, any other
scheme, an empty string, a missing host, a bad port or a path are refused with
``InvalidUrlError`` (reason ``INVALID_URL``), whose message names the URL and what is
supported. No URL at all means ``$SWITCHYARD_URL``, else ``http://127.0.0.1:49134``.

The channel's own reconnect backoff is bounded to 100 ms … 5 s so that a restarted engine
is found again quickly. ``open_channel`` must be called on the event loop that will use
the channel.

``classify`` maps a failed call's transport error to one of the shared causes
(``connection_refused``, ``dns_failure``, ``tls_failure``, ``wrong_protocol``,
``timed_out``, ``connection_lost``, ``other``) and a short text for people.
"""

from __future__ import annotations

import os
import re

import grpc

from .errors import InvalidUrlError, SwitchyardError, UnavailableError, from_rpc_error

DEFAULT_PORT = 49134
DEFAULT_URL = "http://127.0.0.1:49134"

CHANNEL_OPTIONS: list[tuple[str, int]] = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 5000),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
]

# host: a bracketed IPv6 literal or a name/IPv4 without ':' '/' '@'; then an optional port.
_AUTHORITY = re.compile(r"^(?P<host>\[[0-9A-Fa-f:.]+\]|[^\s:/@\[\]?#]+)(?::(?P<port>\d{1,5}))?/?$")


def resolve_url(url: str | None) -> str:
    """The URL to use: `url`, else ``$SWITCHYARD_URL``, else the default."""
    if url is None:
        url = os.environ.get("SWITCHYARD_URL") or DEFAULT_URL
    return url


def parse_url(url: str) -> str:
    """Return the grpc target ``"host:port"`` for `url`, or raise ``InvalidUrlError``."""
    if not isinstance(url, str):
        raise InvalidUrlError("INVALID_URL", f"unsupported URL {url!r}: use http://HOST:PORT or HOST:PORT")
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "http", url
    if scheme.lower() == "https":
        raise InvalidUrlError("INVALID_URL", f"'{url}' needs TLS, which this SDK does not support yet: "
                                             "use http://HOST:PORT")
    match = _AUTHORITY.match(rest) if scheme.lower() == "http" else None
    port = int(match.group("port")) if match and match.group("port") else DEFAULT_PORT
    if match is None or not 0 < port < 65536:
        raise InvalidUrlError("INVALID_URL", f"unsupported URL '{url}': use http://HOST:PORT or HOST:PORT")
    return f"{match.group('host')}:{port}"


def open_channel(url: str) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(parse_url(url), options=CHANNEL_OPTIONS)


CAUSE_TEXT = {
    "connection_refused": "connection refused",
    "dns_failure": "the host name does not resolve",
    "tls_failure": "the TLS handshake failed",
    "wrong_protocol": "the server there does not speak gRPC",
    "timed_out": "no answer in time",
    "connection_lost": "the connection was lost",
}

_PATTERNS = [  # first match wins; searched in the lower-cased transport detail
    ("connection_refused", ("connection refused",)),
    ("dns_failure", ("dns", "resolving", "resolution", "name not found", "lookup")),
    ("tls_failure", ("ssl", "tls", "handshake", "certificate")),
    ("wrong_protocol", ("http/2", "http2", "http1", "settings frame as the first", "protocol")),
    ("timed_out", ("timed out", "timeout", "deadline")),
    ("connection_lost", ("socket closed", "connection reset", "broken pipe", "end of tcp stream",
                         "goaway")),
]


def classify(detail: str) -> tuple[str, str]:
    """(cause, text for people) of a transport failure given gRPC's error detail."""
    low = detail.lower()
    for cause, needles in _PATTERNS:
        if any(n in low for n in needles):
            return cause, CAUSE_TEXT[cause]
    return "other", detail or "unknown transport error"


def unreachable(url: str, cause_text: str) -> UnavailableError:
    """The error for an engine that cannot be reached (fail-fast and calls alike)."""
    return UnavailableError("UNAVAILABLE", f"cannot reach the Switchyard engine at {url}: {cause_text}",
                            grpc.StatusCode.UNAVAILABLE)


def call_error(url: str, err: grpc.RpcError) -> SwitchyardError:
    """The typed error of a failed call to the engine at `url`: an UNAVAILABLE that the
    transport produced (no engine answered; the engine's own carries its reason prefix)
    names the address and the cause, anything else is the engine's error."""
    code = err.code() if hasattr(err, "code") else None
    details = (err.details() if hasattr(err, "details") else "") or ""
    if code == grpc.StatusCode.UNAVAILABLE and not details.startswith("UNAVAILABLE:"):
        return unreachable(url, classify(details)[1])
    return from_rpc_error(err)

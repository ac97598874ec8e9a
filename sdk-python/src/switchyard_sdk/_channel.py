"""Turns a Switchyard URL into a grpc.aio channel, and names transport failures.

Invariant: a URL is checked before any I/O, with the grammar all three SDKs share:
``http://HOST:PORT`` and bare ``HOST:PORT`` mean plaintext gRPC, ``https://HOST:PORT``
means TLS (``tls`` options go with it only, see ``_security``), a missing port means
49134; ``ws://``, ``wss://``, any other scheme, an empty string, a
missing host, a bad port or a path are refused with
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
from dataclasses import dataclass, field

import grpc

from ._security import (Tls, TlsOptions, channel_credentials, invalid, resolve_token, tls_options,
                        token_interceptors)
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
    return parse_endpoint(url)[0]


def parse_endpoint(url: str) -> tuple[str, bool]:
    """(grpc target ``"host:port"``, whether the URL asks for TLS) for `url`, or raise
    ``InvalidUrlError``."""
    if not isinstance(url, str):
        raise InvalidUrlError("INVALID_URL", f"unsupported URL {url!r}: use http://HOST:PORT, "
                                             "https://HOST:PORT or HOST:PORT")
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "http", url
    match = _AUTHORITY.match(rest) if scheme.lower() in ("http", "https") else None
    port = int(match.group("port")) if match and match.group("port") else DEFAULT_PORT
    if match is None or not 0 < port < 65536:
        raise InvalidUrlError("INVALID_URL", f"unsupported URL '{url}': use http://HOST:PORT, "
                                             "https://HOST:PORT or HOST:PORT")
    return f"{match.group('host')}:{port}", scheme.lower() == "https"


def check_url(url: str, tls: TlsOptions | None) -> bool:
    """Whether the channel for `url` uses TLS (``https://``); ``InvalidUrlError`` for a bad
    URL, ``InvalidArgumentError`` for TLS options with a plaintext URL."""
    target, https = parse_endpoint(url)
    if tls is not None and not https:
        plain = url if url.partition("://")[1] else f"http://{target}"
        raise invalid(f"tls options are set but '{plain}' is plaintext: use https://HOST:PORT")
    return https


@dataclass(frozen=True)
class ChannelSpec:
    """Everything a channel needs, checked and read before any I/O (``channel_spec``)."""

    target: str
    credentials: grpc.ChannelCredentials | None  # None: plaintext
    token: str | None = field(repr=False)


def channel_spec(url: str, *, token: str | None = None, tls: Tls | None = None) -> ChannelSpec:
    """Check `url` and the options (token: ``$SWITCHYARD_TOKEN`` when None) and read the TLS
    files; raises ``InvalidUrlError`` / ``ValueError`` before anything connects."""
    options = tls_options(tls)
    target, _ = parse_endpoint(url)
    secure = check_url(url, options)
    credentials = channel_credentials(options or TlsOptions()) if secure else None
    return ChannelSpec(target, credentials, resolve_token(token))


def open_channel(spec: ChannelSpec) -> grpc.aio.Channel:
    """The channel for `spec`; call it on the loop that will use the channel."""
    interceptors = token_interceptors(spec.token)
    if spec.credentials is not None:
        return grpc.aio.secure_channel(spec.target, spec.credentials, options=CHANNEL_OPTIONS,
                                       interceptors=interceptors)
    return grpc.aio.insecure_channel(spec.target, options=CHANNEL_OPTIONS, interceptors=interceptors)


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

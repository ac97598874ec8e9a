"""Token and TLS options: what a channel presents to the engine.

Invariant: a secret and the files are read and checked when the client or worker is built,
before any I/O to the engine; a bad option raises ``InvalidArgumentError`` (reason
``INVALID_ARGUMENT``, also a ``ValueError``) naming the option (and the file), never a
half-configured channel. A token, once given, goes out on every call as
``authorization: Bearer <token>`` (a client interceptor, so the same code works on a
plaintext channel, where grpcio refuses call credentials, and on a TLS one). The token is
never logged and never part of ``repr``.

Rules (shared with the Rust and Node SDKs):
1. ``token=None`` reads ``$SWITCHYARD_TOKEN`` (unset or empty: no token); ``token=""``
   sends none. A token with whitespace or control characters is refused.
2. TLS is on for an ``https://`` URL, and only then: ``tls`` options with a plaintext URL
   (``http://`` or a bare ``HOST:PORT``) are refused — the URL says what is spoken.
3. ``tls.ca_file`` is the PEM bundle the engine's certificate must chain to; without it
   grpcio's default roots are used (its bundled Mozilla roots, or the file named by
   ``$GRPC_DEFAULT_SSL_ROOTS_FILE_PATH``). ``cert_file`` and ``key_file`` (both or
   neither) are the client identity an mTLS engine asks for.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Union

import grpc

from .errors import InvalidArgumentError

TOKEN_ENV = "SWITCHYARD_TOKEN"
_TOKEN_CHARS = re.compile(r"^[\x21-\x7e]+\Z")


@dataclass(frozen=True)
class TlsOptions:
    """TLS settings for ``connect`` / ``register_worker`` (``tls=``); a mapping with these
    keys is accepted too. All paths are PEM files."""

    ca_file: str | os.PathLike[str] | None = None
    cert_file: str | os.PathLike[str] | None = None
    key_file: str | os.PathLike[str] | None = None


Tls = Union[TlsOptions, Mapping[str, Any]]
"""What ``tls=`` takes: :class:`TlsOptions` or ``{"ca_file": …, "cert_file": …, "key_file": …}``."""

_TLS_KEYS = ("ca_file", "cert_file", "key_file")


def invalid(message: str) -> InvalidArgumentError:
    """A bad option, raised before any I/O (as the Rust and Node SDKs do)."""
    return InvalidArgumentError("INVALID_ARGUMENT", message, grpc.StatusCode.INVALID_ARGUMENT)


def tls_options(tls: Tls | None) -> TlsOptions | None:
    """`tls` as ``TlsOptions`` (None stays None); unknown keys raise ``ValueError``."""
    if tls is None or isinstance(tls, TlsOptions):
        return tls
    if not isinstance(tls, Mapping):
        raise TypeError("tls must be TlsOptions(...) or a mapping with ca_file, cert_file, key_file")
    unknown = set(tls) - set(_TLS_KEYS)
    if unknown:
        raise invalid(f"unknown tls options: {', '.join(sorted(map(str, unknown)))} "
                      f"(known: {', '.join(_TLS_KEYS)})")
    return TlsOptions(**{k: tls.get(k) for k in _TLS_KEYS})


def resolve_token(token: str | None) -> str | None:
    """The token to send: `token`, else ``$SWITCHYARD_TOKEN``; None when there is none."""
    source = "token"
    if token is None:
        token, source = os.environ.get(TOKEN_ENV) or "", f"${TOKEN_ENV}"
    if not isinstance(token, str):
        raise TypeError(f"token must be a str, got {type(token).__name__}")
    if token == "":
        return None
    if not _TOKEN_CHARS.match(token):
        raise invalid(f"{source} must be printable ASCII with no spaces (an 'authorization' header value)")
    return token


def _read(option: str, path: str | os.PathLike[str] | None) -> bytes | None:
    if path is None:
        return None
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as err:
        raise invalid(f"tls.{option}: cannot read '{os.fspath(path)}': {err.strerror or err}") from None
    if b"-----BEGIN " not in data:
        raise invalid(f"tls.{option}: '{os.fspath(path)}' is not a PEM file")
    return data


def channel_credentials(tls: TlsOptions) -> grpc.ChannelCredentials:
    """The TLS credentials for `tls` (files read now)."""
    if (tls.cert_file is None) != (tls.key_file is None):
        raise invalid("tls.cert_file and tls.key_file go together (the client identity for mTLS)")
    return grpc.ssl_channel_credentials(root_certificates=_read("ca_file", tls.ca_file),
                                        private_key=_read("key_file", tls.key_file),
                                        certificate_chain=_read("cert_file", tls.cert_file))


def _with_token(details: grpc.aio.ClientCallDetails, header: tuple[str, str]) -> grpc.aio.ClientCallDetails:
    metadata = grpc.aio.Metadata(*(details.metadata or ()))
    metadata.add(*header)
    return grpc.aio.ClientCallDetails(details.method, details.timeout, metadata, details.credentials,
                                      details.wait_for_ready)


class _TokenUnaryUnary(grpc.aio.UnaryUnaryClientInterceptor):
    def __init__(self, header: tuple[str, str]) -> None:
        self._header = header

    async def intercept_unary_unary(self, continuation: Callable[..., Any],
                                    client_call_details: grpc.aio.ClientCallDetails, request: Any) -> Any:
        return await continuation(_with_token(client_call_details, self._header), request)


class _TokenStreamStream(grpc.aio.StreamStreamClientInterceptor):
    def __init__(self, header: tuple[str, str]) -> None:
        self._header = header

    async def intercept_stream_stream(self, continuation: Callable[..., Any],
                                      client_call_details: grpc.aio.ClientCallDetails,
                                      request_iterator: Any) -> Any:
        return await continuation(_with_token(client_call_details, self._header), request_iterator)


def token_interceptors(token: str | None) -> list[grpc.aio.ClientInterceptor]:
    """Interceptors that add the bearer header to every unary and streaming call (the
    engine's calls are unary, and the worker's ``Connect`` stream)."""
    if token is None:
        return []
    header = ("authorization", f"Bearer {token}")
    return [_TokenUnaryUnary(header), _TokenStreamStream(header)]

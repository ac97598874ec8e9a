/**
 * The engine URL grammar, shared by every Switchyard SDK, checked before any I/O.
 *
 * Invariant: a URL either names one gRPC endpoint `HOST:PORT` and says whether it is
 * TLS, or construction fails with InvalidUrlError (reason INVALID_URL) naming the URL and
 * what is supported. A scheme always means what it says: nothing that asks for TLS is
 * sent in plaintext, and `tls` options with a plaintext URL are refused (security.ts).
 *
 * Grammar:
 *   1. `http://HOST[:PORT][/]` and bare `HOST[:PORT]` mean plaintext gRPC; a missing port
 *      is 49134. HOST is a name, an IPv4 address or a bracketed IPv6 address.
 *   2. `https://HOST[:PORT][/]` means TLS, with the same HOST and PORT rules.
 *   3. Anything else — `ws://`, `wss://` (iii's form), other schemes, a path, credentials,
 *      an empty string, no host, a port outside 1…65535 — is refused.
 *   4. No URL at all: `SWITCHYARD_URL` when set and non-empty, else http://127.0.0.1:49134.
 *
 * Not done: name resolution (it happens when connecting).
 */
import { status as grpcStatus } from '@grpc/grpc-js';
import { InvalidUrlError } from './errors.js';

export const DEFAULT_PORT = 49134;
export const DEFAULT_URL = `http://127.0.0.1:${DEFAULT_PORT}`;

export interface EngineAddress {
  /** The URL in its canonical form, `http://HOST:PORT` or `https://HOST:PORT`: what logs and errors name. */
  url: string;
  /** The grpc-js target, `HOST:PORT`. */
  target: string;
  /** The URL asked for TLS (`https://`). */
  tls: boolean;
}

const SCHEME = /^([a-z][a-z0-9+.-]*):\/\//i;
const HOST_PORT = /^(\[[0-9a-f:.]+\]|[a-z0-9_](?:[a-z0-9_.-]*[a-z0-9_])?)(?::(\d{1,5}))?$/i;

/** The URL a worker uses when the application gives none. */
export function defaultUrl(env: NodeJS.ProcessEnv = process.env): string {
  return env.SWITCHYARD_URL || DEFAULT_URL;
}

/** Checks `url` against the grammar above; throws InvalidUrlError when it is refused. */
export function parseEngineUrl(url: string): EngineAddress {
  if (typeof url !== 'string') throw unsupported(String(url));
  const scheme = SCHEME.exec(url)?.[1]?.toLowerCase();
  if (scheme !== undefined && scheme !== 'http' && scheme !== 'https') throw unsupported(url);
  const authority = scheme === undefined ? url : url.slice(`${scheme}://`.length).replace(/\/$/, '');
  const match = HOST_PORT.exec(authority);
  if (match === null) throw unsupported(url);
  const host = match[1]!;
  const port = match[2] === undefined ? DEFAULT_PORT : Number(match[2]);
  if (port < 1 || port > 65535) throw unsupported(url);
  const tls = scheme === 'https';
  return { url: `${tls ? 'https' : 'http'}://${host}:${port}`, target: `${host}:${port}`, tls };
}

function unsupported(url: string): InvalidUrlError {
  return invalidUrl(`INVALID_URL: unsupported URL '${url}': use http://HOST:PORT, https://HOST:PORT or HOST:PORT`);
}

function invalidUrl(message: string): InvalidUrlError {
  return new InvalidUrlError('INVALID_URL', message, grpcStatus.INVALID_ARGUMENT);
}

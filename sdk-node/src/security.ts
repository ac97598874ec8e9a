/**
 * Token and TLS options: what the worker's channel presents to the engine.
 *
 * Invariant: the secret and the files are read and checked in the Worker's constructor,
 * before any I/O to the engine; a bad option throws InvalidArgumentError (reason
 * INVALID_ARGUMENT, the same text as the Rust and Python SDKs) naming the option and the
 * file, never a half-configured channel. A token, once given, goes out on every call — unary
 * calls and the Connect stream alike — as `authorization: Bearer <token>`, added by a
 * client interceptor (grpc-js refuses call credentials on a plaintext channel; the
 * interceptor works on both). The token is never logged.
 *
 * Rules (shared with the Rust and Python SDKs):
 *   1. `token` undefined reads `SWITCHYARD_TOKEN` (unset or empty: no token); `token: ''`
 *      sends none. A token with whitespace or control characters is refused.
 *   2. TLS is on for an `https://` URL, and only then: `tls` options with a plaintext URL
 *      (`http://` or a bare `HOST:PORT`) are refused — the URL says what is spoken.
 *   3. `tls.caFile` is the PEM bundle the engine's certificate must chain to; without it
 *      Node's default roots are used. `certFile` and `keyFile` (both or neither) are the
 *      client identity an mTLS engine asks for.
 */
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { InvalidArgumentError } from './errors.js';
import type { TlsOptions } from './types.js';
import type { EngineAddress } from './url.js';

export const TOKEN_ENV = 'SWITCHYARD_TOKEN';
const TOKEN_CHARS = /^[\x21-\x7e]+$/;

/** A bad option, thrown before any I/O. */
function invalid(message: string): InvalidArgumentError {
  return new InvalidArgumentError('INVALID_ARGUMENT', message, grpc.status.INVALID_ARGUMENT);
}

/** The token to send: `token`, else `SWITCHYARD_TOKEN`; undefined when there is none. */
export function resolveToken(token: string | undefined, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const source = token === undefined ? TOKEN_ENV : 'token';
  const value = token ?? env[TOKEN_ENV] ?? '';
  if (typeof value !== 'string') throw new TypeError(`token must be a string, got ${typeof value}`);
  if (value === '') return undefined;
  if (!TOKEN_CHARS.test(value)) {
    throw invalid(`${source} must be printable ASCII with no spaces (an 'authorization' header value)`);
  }
  return value;
}

const TLS_KEYS = ['caFile', 'certFile', 'keyFile'];

function readPem(option: string, path: string | undefined): Buffer | null {
  if (path === undefined) return null;
  let data: Buffer;
  try {
    data = readFileSync(path);
  } catch (error) {
    throw invalid(`tls.${option}: cannot read '${path}': ${(error as Error).message}`);
  }
  if (!data.includes('-----BEGIN ')) throw invalid(`tls.${option}: '${path}' is not a PEM file`);
  return data;
}

/** The channel credentials for `address` and `tls` (files read now). */
export function channelCredentials(address: EngineAddress, tls: TlsOptions | undefined): grpc.ChannelCredentials {
  if (tls !== undefined) {
    if (typeof tls !== 'object' || tls === null) throw new TypeError('tls must be an object { caFile?, certFile?, keyFile? }');
    const unknown = Object.keys(tls).filter((k) => !TLS_KEYS.includes(k));
    if (unknown.length > 0) throw invalid(`unknown tls options: ${unknown.join(', ')} (known: ${TLS_KEYS.join(', ')})`);
    if (!address.tls) throw invalid(`tls options are set but '${address.url}' is plaintext: use https://HOST:PORT`);
  }
  if (!address.tls) return grpc.credentials.createInsecure();
  const options = tls ?? {};
  if ((options.certFile === undefined) !== (options.keyFile === undefined)) {
    throw invalid('tls.certFile and tls.keyFile go together (the client identity for mTLS)');
  }
  return grpc.credentials.createSsl(
    readPem('caFile', options.caFile),
    readPem('keyFile', options.keyFile),
    readPem('certFile', options.certFile),
  );
}

/** Interceptors that add the bearer header to every call (none without a token). */
export function tokenInterceptors(token: string | undefined): grpc.Interceptor[] {
  if (token === undefined) return [];
  const header = `Bearer ${token}`;
  return [
    (options, nextCall) =>
      new grpc.InterceptingCall(nextCall(options), {
        start(metadata, listener, next) {
          metadata.set('authorization', header);
          next(metadata, listener);
        },
      }),
  ];
}

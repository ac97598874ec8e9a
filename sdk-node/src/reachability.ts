/**
 * Why the engine could not be reached, in the words every Switchyard SDK uses.
 *
 * Invariant: every transport failure maps to exactly one cause of the shared vocabulary —
 * `connection_refused`, `dns_failure`, `tls_failure`, `wrong_protocol`, `timed_out`,
 * `connection_lost`, `other` — and one text that starts with that cause in plain words
 * and keeps the transport's own detail in parentheses, so a log line or an error says
 * both what happened and what grpc-js saw.
 *
 * Classification reads grpc-js's status details, which carry the socket error
 * (`connect ECONNREFUSED 127.0.0.1:1`), the resolver's (`Name resolution failed for …`) or
 * the HTTP/2 layer's (`Protocol error`, when the peer does not speak HTTP/2).
 */
import { status as grpcStatus } from '@grpc/grpc-js';

export type UnreachableCause =
  | 'connection_refused'
  | 'dns_failure'
  | 'tls_failure'
  | 'wrong_protocol'
  | 'timed_out'
  | 'connection_lost'
  | 'other';

export interface Unreachable {
  cause: UnreachableCause;
  /** e.g. "connection refused (connect ECONNREFUSED 127.0.0.1:1)". */
  text: string;
}

const WORDS: Record<UnreachableCause, string> = {
  connection_refused: 'connection refused',
  dns_failure: 'DNS lookup failed',
  tls_failure: 'TLS handshake failed',
  wrong_protocol: 'the server does not speak gRPC (HTTP/2)',
  timed_out: 'timed out',
  connection_lost: 'connection lost',
  other: 'transport error',
};

const RULES: [RegExp, UnreachableCause][] = [
  [/ECONNREFUSED/, 'connection_refused'],
  [/Name resolution failed|ENOTFOUND|EAI_AGAIN|getaddrinfo/i, 'dns_failure'],
  [/\b(TLS|SSL)\b|certificate|handshake failure|EPROTO/i, 'tls_failure'],
  [/Protocol error|HTTP status code|content-type|HTTP\/1|PROTOCOL_ERROR/i, 'wrong_protocol'],
  [/ETIMEDOUT|timed out|timeout|Deadline exceeded/i, 'timed_out'],
  [/ECONNRESET|EPIPE|Connection dropped|Connection closed|GOAWAY|socket hang up/i, 'connection_lost'],
];

/** Classifies a failed call or stream by its gRPC code and details. */
export function classify(code: number, details: string): Unreachable {
  let cause = RULES.find(([pattern]) => pattern.test(details))?.[1] ?? 'other';
  if (cause === 'other' && code === grpcStatus.DEADLINE_EXCEEDED) cause = 'timed_out';
  return unreachable(cause, details);
}

/** The cause with its text; `detail` is the transport's own words (tidied), if any. */
export function unreachable(cause: UnreachableCause, detail = ''): Unreachable {
  const tidy = tidyDetail(detail);
  return { cause, text: tidy ? `${WORDS[cause]} (${tidy})` : WORDS[cause] };
}

/** `cannot reach the Switchyard engine at URL: TEXT` — the shared sentence. */
export function cannotReach(url: string, failure: Unreachable): string {
  return `cannot reach the Switchyard engine at ${url}: ${failure.text}`;
}

/** grpc-js's "No connection established. Last error: Error: connect … (time). Resolution note: " to "connect …". */
function tidyDetail(detail: string): string {
  return detail
    .replace(/^No connection established\. Last error: /, '')
    .replace(/^Error: /, '')
    .replace(/\. Resolution note: .*$/s, '')
    .replace(/ \(\d{4}-\d\d-\d\dT[\d:.]+Z\)/, '')
    .trim();
}

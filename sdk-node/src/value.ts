/**
 * Conversion between JSON-like JavaScript values and google.protobuf.Value.
 *
 * Invariant: `fromValue(toValue(x))` equals `JSON.parse(JSON.stringify(x))` for every
 * input JSON.stringify accepts — the engine sees a payload exactly as a JSON encoder
 * would write it: `toJSON()` is honoured (Dates become strings), `undefined`, functions
 * and symbols are dropped from objects and become null in arrays, non-finite numbers
 * become null. BigInt is refused with a TypeError, as JSON.stringify does.
 */
import type { WireLong, WireTimestamp, WireValue } from './messages.js';

/** Any value JSON can carry. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

const NULL: WireValue = { nullValue: 0 };

/** Encodes a JavaScript value as a google.protobuf.Value (proto-loader object form). */
export function toValue(input: unknown): WireValue {
  return encode(input, new Set());
}

function encode(input: unknown, seen: Set<object>): WireValue {
  let value = input;
  if (value !== null && typeof value === 'object' && typeof (value as { toJSON?: unknown }).toJSON === 'function') {
    value = (value as { toJSON: () => unknown }).toJSON();
  }
  switch (typeof value) {
    case 'string':
      return { stringValue: value };
    case 'number':
      // -0 becomes 0, as JSON writes it.
      return Number.isFinite(value) ? { numberValue: value === 0 ? 0 : value } : NULL;
    case 'boolean':
      return { boolValue: value };
    case 'bigint':
      throw new TypeError('Do not know how to serialize a BigInt');
    case 'object':
      break;
    default:
      // undefined, function, symbol: null at the top level or in arrays.
      return NULL;
  }
  if (value === null) return NULL;
  const obj = value as object;
  if (seen.has(obj)) throw new TypeError('Converting circular structure to a protobuf Value');
  seen.add(obj);
  try {
    if (Array.isArray(obj)) {
      return { listValue: { values: obj.map((item) => encode(item, seen)) } };
    }
    const fields: Record<string, WireValue> = {};
    for (const [key, item] of Object.entries(obj)) {
      if (item === undefined || typeof item === 'function' || typeof item === 'symbol') continue;
      fields[key] = encode(item, seen);
    }
    return { structValue: { fields } };
  } finally {
    seen.delete(obj);
  }
}

/**
 * Decodes a google.protobuf.Value; an absent or empty Value is null. Works on protobufjs
 * message instances (whose unset members read as defaults, so only `kind` is trusted) and
 * on plain objects (`kind` optional).
 */
export function fromValue(value: WireValue | null | undefined): JsonValue {
  if (value === null || value === undefined) return null;
  switch (value.kind ?? memberOf(value)) {
    case 'stringValue':
      return value.stringValue ?? '';
    case 'numberValue':
      return value.numberValue ?? 0;
    case 'boolValue':
      return value.boolValue ?? false;
    case 'structValue': {
      const out: { [key: string]: JsonValue } = {};
      const fields = value.structValue?.fields ?? {};
      for (const key of Object.keys(fields)) {
        const item = fromValue(fields[key]);
        // A "__proto__" key is data, never the object's prototype.
        if (key === '__proto__') Object.defineProperty(out, key, { value: item, enumerable: true, writable: true, configurable: true });
        else out[key] = item;
      }
      return out;
    }
    case 'listValue':
      return (value.listValue?.values ?? []).map(fromValue);
    default:
      return null;
  }
}

/** The set member of a plain Value object that carries no `kind`. */
function memberOf(value: WireValue): WireValue['kind'] {
  if (value.stringValue !== undefined) return 'stringValue';
  if (value.numberValue !== undefined) return 'numberValue';
  if (value.boolValue !== undefined) return 'boolValue';
  if (value.structValue !== undefined && value.structValue !== null) return 'structValue';
  if (value.listValue !== undefined && value.listValue !== null) return 'listValue';
  return 'nullValue';
}

/** Decodes a google.protobuf.Timestamp; absent is undefined. */
export function fromTimestamp(ts: WireTimestamp | null | undefined): Date | undefined {
  if (ts === null || ts === undefined) return undefined;
  // seconds is a Long, a decimal string or a number depending on the decoder.
  const seconds = Number(String(ts.seconds ?? 0));
  const nanos = ts.nanos ?? 0;
  return new Date(seconds * 1000 + Math.floor(nanos / 1e6));
}

/** A uint64 as a decoder renders it (decimal string, Long or number) to a JavaScript number. */
export function toNumber(value: WireLong | null | undefined): number {
  if (value === null || value === undefined) return 0;
  return typeof value === 'number' ? value : Number(String(value));
}

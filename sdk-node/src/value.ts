/**
 * JSON-like JavaScript values to and from the wire bytes of a google.protobuf.Value.
 *
 * Invariant: `fromValueBytes(toValueBytes(x))` equals `JSON.parse(JSON.stringify(x))` for
 * every input JSON.stringify accepts — the engine sees a payload exactly as a JSON
 * encoder would write it: `toJSON(key)` is honoured (Dates become strings), Number,
 * String and Boolean objects are unwrapped, `undefined`, functions and symbols are
 * dropped from objects and become null in arrays, non-finite numbers become null and -0
 * becomes 0; BigInt is refused with a TypeError and a circular structure with another,
 * as JSON.stringify does. A key named "__proto__" is data both ways: it is written like
 * any other own key and read back as an own property, never as the object's prototype.
 * Two limits the wire imposes, beyond JSON: nesting is bounded at MAX_DEPTH Value levels
 * (as the engine bounds it) — deeper input is refused with a RangeError — and strings
 * travel as UTF-8, so a lone surrogate becomes U+FFFD (as TextEncoder and Buffer write
 * it; JSON.stringify would escape it).
 *
 * The bytes are read as the engine reads them (switchyard_proto::value_wire): known
 * fields must have their wire type, lengths must stay inside the buffer, strings and keys
 * must be UTF-8 (else an Error), unknown fields are skipped, the last `kind` of a Value
 * wins, a repeated object key keeps its last value, empty bytes are null, and so are NaN
 * and the infinities, which JSON cannot hold.
 *
 * Wire format (field number, wire type): Value = 1 null_value (varint) | 2 number_value
 * (fixed64 double) | 3 string_value (len) | 4 bool_value (varint) | 5 struct_value (len:
 * Struct) | 6 list_value (len: ListValue); Struct = repeated 1 (len: entry {1 key (len),
 * 2 value (len: Value)}); ListValue = repeated 1 (len: Value).
 */
import type { WireLong, WireTimestamp, WireValueBytes } from './messages.js';

/** Any value JSON can carry. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** Deepest Value nesting written or read: a scalar is 1 level, each array or object adds one (the engine's bound). */
export const MAX_DEPTH = 100;

// Field keys (field number << 3 | wire type).
const NULL_VALUE = 0x08;
const NUMBER_VALUE = 0x11;
const STRING_VALUE = 0x1a;
const BOOL_VALUE = 0x20;
const STRUCT_VALUE = 0x2a;
const LIST_VALUE = 0x32;
/** Field 1, length-delimited: a Struct entry, a ListValue item, an entry's key. */
const FIELD_1 = 0x0a;
/** Field 2, length-delimited: an entry's value. */
const FIELD_2 = 0x12;

// ---- writing ----------------------------------------------------------------------

/** null, encoded. Shared: never written to. */
const NULL_BYTES: Uint8Array = Buffer.from([NULL_VALUE, 0]);

/**
 * Encodes a JavaScript value (see the module invariant) as google.protobuf.Value wire
 * bytes, to be read, never modified (null's are shared).
 */
export function toValueBytes(input: unknown): Uint8Array {
  // The commonest result, a handler that returns nothing, skips the writer.
  if (input === null || input === undefined) return NULL_BYTES;
  // A toJSON that encodes a payload itself re-enters here while `idle` is taken: it gets its own writer.
  const writer = idle ?? new ValueWriter();
  idle = undefined;
  try {
    if (!writer.value(input, '', 1)) writer.null();
    return writer.bytes();
  } finally {
    writer.reset();
    if (writer.capacity <= KEEP_CAPACITY) idle = writer;
  }
}

/** A writer kept for the next encode, unless a large payload grew it past this. */
const KEEP_CAPACITY = 64 * 1024;
let idle: ValueWriter | undefined;

/**
 * Writes one Value in a single pass: a nested message's length is a one-byte placeholder,
 * patched once its content is written (the content moves right when the length needs
 * more bytes, i.e. from 128 bytes on).
 */
class ValueWriter {
  private buf = Buffer.allocUnsafeSlow(1024);
  private pos = 0;
  /** The arrays and objects being written, outermost first: the cycle check. */
  private readonly open: object[] = [];

  get capacity(): number {
    return this.buf.length;
  }

  /** A copy of what was written. */
  bytes(): Uint8Array {
    const out = Buffer.allocUnsafe(this.pos);
    this.buf.copy(out, 0, 0, this.pos);
    return out;
  }

  reset(): void {
    this.pos = 0;
    this.open.length = 0;
  }

  null(): void {
    this.ensure(2);
    this.buf[this.pos++] = NULL_VALUE;
    this.buf[this.pos++] = 0;
  }

  /**
   * Writes `input`, the member `key` of its holder, as the Value fields at `depth`; false
   * (nothing written) when JSON drops it: undefined, a function, a symbol.
   */
  value(input: unknown, key: string | number, depth: number): boolean {
    const value = jsonOf(input, key);
    switch (typeof value) {
      case 'string':
        this.checkDepth(depth);
        this.byte(STRING_VALUE);
        this.string(value);
        return true;
      case 'number':
        this.checkDepth(depth);
        if (!Number.isFinite(value)) {
          this.null();
        } else {
          this.ensure(9);
          this.buf[this.pos++] = NUMBER_VALUE;
          // -0 becomes 0, as JSON writes it.
          this.buf.writeDoubleLE(value === 0 ? 0 : value, this.pos);
          this.pos += 8;
        }
        return true;
      case 'boolean':
        this.checkDepth(depth);
        this.ensure(2);
        this.buf[this.pos++] = BOOL_VALUE;
        this.buf[this.pos++] = value ? 1 : 0;
        return true;
      case 'bigint':
        throw new TypeError('Do not know how to serialize a BigInt');
      case 'object':
        this.checkDepth(depth);
        if (value === null) this.null();
        else this.container(value, depth);
        return true;
      default:
        return false;
    }
  }

  private checkDepth(depth: number): void {
    if (depth > MAX_DEPTH) throw new RangeError(`A payload nests deeper than ${MAX_DEPTH} levels`);
  }

  private container(obj: object, depth: number): void {
    if (this.open.includes(obj)) throw new TypeError('Converting circular structure to a protobuf Value');
    this.open.push(obj);
    if (Array.isArray(obj)) {
      const list = this.begin(LIST_VALUE);
      for (let i = 0; i < obj.length; i++) {
        const item = this.begin(FIELD_1);
        if (!this.value(obj[i], i, depth + 1)) this.null();
        this.end(item);
      }
      this.end(list);
    } else {
      const struct = this.begin(STRUCT_VALUE);
      const record = obj as Record<string, unknown>;
      for (const key of Object.keys(record)) {
        const entryAt = this.pos;
        const entry = this.begin(FIELD_1);
        this.byte(FIELD_1);
        this.string(key);
        const item = this.begin(FIELD_2);
        if (this.value(record[key], key, depth + 1)) {
          this.end(item);
          this.end(entry);
        } else {
          this.pos = entryAt; // a dropped member leaves no entry
        }
      }
      this.end(struct);
    }
    this.open.pop();
  }

  private byte(b: number): void {
    this.ensure(1);
    this.buf[this.pos++] = b;
  }

  /** Writes `key` and a one-byte length placeholder; returns where the message's content starts. */
  private begin(key: number): number {
    this.ensure(2);
    this.buf[this.pos] = key;
    this.pos += 2;
    return this.pos;
  }

  /** Writes the length of the message whose content starts at `start` and ends here. */
  private end(start: number): void {
    const length = this.pos - start;
    if (length < 0x80) {
      this.buf[start - 1] = length;
      return;
    }
    const extra = varintLength(length) - 1;
    this.ensure(extra);
    this.buf.copyWithin(start + extra, start, this.pos);
    this.pos += extra;
    this.varintAt(start - 1, length);
  }

  /** A length-delimited UTF-8 string (lone surrogates become U+FFFD). */
  private string(text: string): void {
    const units = text.length;
    if (units <= 42) {
      // At most 3 bytes per UTF-16 unit: under 128 bytes, so one length byte, written last.
      this.ensure(1 + 3 * units);
      const at = this.pos + 1;
      let i = 0;
      for (; i < units; i++) {
        const unit = text.charCodeAt(i);
        if (unit >= 0x80) break;
        this.buf[at + i] = unit;
      }
      const length = i === units ? units : this.buf.write(text, at);
      this.buf[this.pos] = length;
      this.pos = at + length;
      return;
    }
    const length = Buffer.byteLength(text);
    this.ensure(5 + length);
    this.pos = this.varintAt(this.pos, length);
    this.pos += this.buf.write(text, this.pos);
  }

  /** Writes `n` as a varint at `at`; returns the position after it. */
  private varintAt(at: number, n: number): number {
    while (n > 0x7f) {
      this.buf[at++] = (n & 0x7f) | 0x80;
      n >>>= 7;
    }
    this.buf[at++] = n;
    return at;
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const grown = Buffer.allocUnsafeSlow(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(grown, 0, 0, this.pos);
    this.buf = grown;
  }
}

/**
 * What JSON.stringify serializes for `input` held under `key`: the result of its
 * `toJSON(key)` if it has one, with Number, String and Boolean objects unwrapped (a
 * BigInt object becomes its bigint, which is then refused).
 */
function jsonOf(input: unknown, key: string | number): unknown {
  const type = typeof input;
  if (input === null || (type !== 'object' && type !== 'function' && type !== 'bigint')) return input;
  let value = input;
  const toJSON = (value as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === 'function') value = toJSON.call(value, String(key));
  if (typeof value !== 'object' || value === null) return value;
  if (value instanceof Number) return Number(value);
  if (value instanceof String) return String(value);
  if (value instanceof Boolean || value instanceof BigInt) return value.valueOf();
  return value;
}

/** Bytes a protobuf varint takes for the non-negative 32-bit `n`. */
export function varintLength(n: number): number {
  let length = 1;
  while (n > 0x7f) {
    n >>>= 7;
    length += 1;
  }
  return length;
}

// ---- reading ----------------------------------------------------------------------

/**
 * Decodes google.protobuf.Value wire bytes (see the module doc); empty or absent bytes
 * are null. Throws an Error naming the fault when the bytes are not a Value.
 */
export function fromValueBytes(bytes: WireValueBytes | null | undefined): JsonValue {
  // Unset: absent, or protobufjs's empty-array default.
  if (!(bytes instanceof Uint8Array) || bytes.length === 0) return null;
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return new ValueReader(buf).value(buf.length, 1);
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function invalid(why: string): Error {
  return new Error(`switchyard: payload is not a google.protobuf.Value: ${why}`);
}

/** Reads messages from `buf`, each one ending at an `end` its caller checked. */
class ValueReader {
  private pos = 0;

  constructor(private readonly buf: Buffer) {}

  /** The Value whose fields run to `end`, `depth` levels deep. */
  value(end: number, depth: number): JsonValue {
    if (depth > MAX_DEPTH) throw invalid(`nested deeper than ${MAX_DEPTH} levels`);
    let out: JsonValue = null;
    while (this.pos < end) {
      const key = this.varint(end);
      switch (key) {
        case NULL_VALUE:
          this.varint(end);
          out = null;
          break;
        case NUMBER_VALUE: {
          if (end - this.pos < 8) throw invalid('truncated');
          const n = this.buf.readDoubleLE(this.pos);
          this.pos += 8;
          // NaN and the infinities (which only a raw client can send) read as null, as a
          // JSON encoder writes them and as the Rust SDK reads them.
          out = Number.isFinite(n) ? n : null;
          break;
        }
        case STRING_VALUE:
          out = this.string(end);
          break;
        case BOOL_VALUE:
          out = this.varint(end) !== 0;
          break;
        case STRUCT_VALUE:
          out = this.struct(this.delimited(end), depth);
          break;
        case LIST_VALUE:
          out = this.list(this.delimited(end), depth);
          break;
        default:
          this.skip(key, end, 6, 'a field has the wrong wire type');
      }
    }
    return out;
  }

  /** A Struct whose entries run to `end`: an object with Object.prototype and own keys only. */
  private struct(end: number, depth: number): { [key: string]: JsonValue } {
    const out: { [key: string]: JsonValue } = {};
    while (this.pos < end) {
      const key = this.varint(end);
      if (key !== FIELD_1) {
        this.skip(key, end, 1, 'an object has the wrong wire type');
        continue;
      }
      const entryEnd = this.delimited(end);
      let name = '';
      let item: JsonValue = null;
      while (this.pos < entryEnd) {
        const field = this.varint(entryEnd);
        if (field === FIELD_1) name = this.string(entryEnd);
        else if (field === FIELD_2) item = this.value(this.delimited(entryEnd), depth + 1);
        else this.skip(field, entryEnd, 2, 'an object entry has the wrong wire type');
      }
      // A "__proto__" key is data, never the object's prototype.
      if (name === '__proto__') Object.defineProperty(out, name, { value: item, enumerable: true, writable: true, configurable: true });
      else out[name] = item;
    }
    return out;
  }

  /** A ListValue whose items run to `end`. */
  private list(end: number, depth: number): JsonValue[] {
    const out: JsonValue[] = [];
    while (this.pos < end) {
      const key = this.varint(end);
      if (key === FIELD_1) out.push(this.value(this.delimited(end), depth + 1));
      else this.skip(key, end, 1, 'a list has the wrong wire type');
    }
    return out;
  }

  /** A length-delimited UTF-8 string. */
  private string(end: number): string {
    const stop = this.delimited(end);
    const start = this.pos;
    this.pos = stop;
    for (let i = start; i < stop; i++) {
      if (this.buf[i]! >= 0x80) {
        try {
          return utf8.decode(this.buf.subarray(start, stop));
        } catch {
          throw invalid('a string is not UTF-8');
        }
      }
    }
    return this.buf.toString('latin1', start, stop);
  }

  /** Reads a length; returns where the content it announces ends (the reader is at its start). */
  private delimited(end: number): number {
    const length = this.varint(end);
    if (length > end - this.pos) throw invalid('truncated');
    return this.pos + length;
  }

  /** A varint of up to 10 bytes (64 bits; exact up to 2^53). */
  private varint(end: number): number {
    if (this.pos >= end) throw invalid('truncated');
    let byte = this.buf[this.pos++]!;
    if (byte < 0x80) return byte;
    let value = byte & 0x7f;
    let scale = 0x80;
    for (let i = 1; i < 10; i++) {
      if (this.pos >= end) throw invalid('truncated');
      byte = this.buf[this.pos++]!;
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) return value;
      scale *= 0x80;
    }
    throw invalid('a varint runs past 10 bytes');
  }

  /**
   * Skips the field `key` announces, refusing field 0 and the known fields 1..`known`
   * (which `wrongType` then names: they were not read, so their wire type is wrong).
   */
  private skip(key: number, end: number, known: number, wrongType: string): void {
    const field = Math.floor(key / 8);
    if (field === 0) throw invalid('field 0');
    if (field <= known) throw invalid(wrongType);
    switch (key % 8) {
      case 0:
        this.varint(end);
        return;
      case 1:
        this.take(8, end);
        return;
      case 2:
        this.pos = this.delimited(end);
        return;
      case 5:
        this.take(4, end);
        return;
      default:
        throw invalid('unsupported wire type');
    }
  }

  private take(n: number, end: number): void {
    if (end - this.pos < n) throw invalid('truncated');
    this.pos += n;
  }
}

// ---- other well-known types -------------------------------------------------------

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

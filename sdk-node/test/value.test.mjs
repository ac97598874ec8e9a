// The payload codec (src/value.ts): JavaScript values to google.protobuf.Value wire bytes
// and back, checked against JSON.parse(JSON.stringify(x)) and against protobufjs, an
// independent writer and reader of the same format.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import protobuf from 'protobufjs';
import { fromValueBytes, MAX_DEPTH, toValueBytes } from '../dist/value.js';

const ValueType = protobuf.Root.fromJSON(protobuf.common.get('google/protobuf/struct.proto')).lookupType('google.protobuf.Value');

/** What a JSON encoder makes of `value`. */
const viaJson = (value) => JSON.parse(JSON.stringify(value));

/** `levels` arrays around null: levels + 1 Value levels. */
function nest(levels) {
  let value = null;
  for (let i = 0; i < levels; i++) value = [value];
  return value;
}

/** Each of `values` as its own case, named `name[i]`. */
const many = (name, values) => values.map((value, i) => [`${name}[${i}]`, value]);

/** Inputs without a "__proto__" key, shallow enough for protobufjs to encode too: [name, value] pairs. */
function plainSamples() {
  const when = new Date('2026-01-02T03:04:05.000Z');
  const shared = { s: 1 };
  return [
    ...many('scalar', [null, true, false, 0, 1, -1, 1.5, '', 'x', 'héllo wörld', when]),
    ...many('double', [Number.MAX_VALUE, -Number.MAX_VALUE, Number.MIN_VALUE, 2 ** 53 + 2, -(2 ** 31), 0.1 + 0.2, 1e21, 123456789.125]),
    ...many('nonFinite', [NaN, Infinity, -Infinity, -0, [NaN, -0, Infinity]]),
    ...many('unicode', ['😀', 'a😀b', '𝄞'.repeat(30), '中文字符串', '\u0000\u0001\u007f\u0080\u07ff\u0800\uffff', '\ufeffBOM first', 'é'.repeat(100)]),
    ...many('length', ['a'.repeat(42), 'a'.repeat(43), 'a'.repeat(127), 'a'.repeat(128), 'ü'.repeat(64), 'x'.repeat(16_384), 'y'.repeat(200_000)]),
    ...many('container', [[], {}, [[]], [{}], { a: [] }, { '': '' }, [1, 'two', null, true, { three: [3] }]]),
    ['payment', { orderId: 'ord_789', amount: 12.5, ok: true, none: null, tags: ['a', 1, false, null], nested: { deep: [{}] } }],
    ['keyOrder', { b: 1, a: 2, 10: 'ten', 2: 'two', z: { y: 1, x: 2 } }],
    ['large', { items: Array.from({ length: 300 }, (_, i) => ({ sku: `sku_${i}`, qty: i, note: 'n'.repeat(i % 50) })) }],
    ['largeNested', { a: { b: { c: ['x'.repeat(20_000), { d: 'y'.repeat(200) }] } } }],
    ['toJSON', { when, custom: { toJSON: (key) => `key=${key}` }, list: [{ toJSON: (key) => `index=${key}` }], gone: { toJSON: () => undefined } }],
    ['wrappers', { n: new Number(3), s: new String('str'), b: new Boolean(false), list: [new Number(-0), new String('')] }],
    ['dropped', { u: undefined, f() {}, s: Symbol('s'), [Symbol('key')]: 1, kept: 1, list: [undefined, () => 1, Symbol('t')] }],
    ['holes', [1, , 3]],
    ['instances', { map: new Map([['a', 1]]), set: new Set([1]), regexp: /x/g, error: new Error('e'), klass: new (class { field = 1 })() }],
    ['nullPrototype', Object.assign(Object.create(null), { a: 1, b: [2] })],
    ['accessors', Object.defineProperties({}, { seen: { get: () => 'computed', enumerable: true }, hidden: { value: 1, enumerable: false } })],
    ['sharedReference', { a: shared, b: shared, c: [shared, shared] }],
  ];
}

/** Inputs nested as deep as the engine allows (100 Value levels). */
function deepSamples() {
  return [
    ['deepestList', nest(MAX_DEPTH - 1)],
    ['deepestObject', JSON.parse('{"a":'.repeat(MAX_DEPTH - 1) + 'null' + '}'.repeat(MAX_DEPTH - 1))],
  ];
}

/** Inputs with own "__proto__" keys, at several depths and in arrays. */
function protoKeySamples() {
  const defined = Object.defineProperty({ a: 1 }, '__proto__', { value: { b: 2 }, enumerable: true, writable: true, configurable: true });
  return [
    ['top', JSON.parse('{"__proto__": 1, "a": 2}')],
    ['onlyKey', JSON.parse('{"__proto__": {"polluted": true}}')],
    ['nested', JSON.parse('{"a": {"__proto__": {"__proto__": {"b": [{"__proto__": "deep"}]}}}}')],
    ['inArrays', JSON.parse('[{"__proto__": null}, [{"__proto__": []}], {"x": {"__proto__": {}}}]')],
    ['deep', JSON.parse('{"k": '.repeat(20) + '{"__proto__": [1, {"__proto__": 2}]}' + '}'.repeat(20))],
    ['defined', defined],
    ['inPayment', JSON.parse('{"orderId": "ord_1", "__proto__": {"amount": 5}, "lines": [{"__proto__": {"sku": "s"}, "qty": 1}]}')],
  ];
}

const allSamples = () => [...plainSamples(), ...deepSamples(), ...protoKeySamples()];

/** Every own "__proto__" key along the way is an own data property, and every object has Object.prototype. */
function assertProtoKeysAreData(decoded, expected, path) {
  if (expected === null || typeof expected !== 'object') return;
  assert.equal(Object.getPrototypeOf(decoded), Array.isArray(expected) ? Array.prototype : Object.prototype, `${path}: prototype`);
  for (const key of Object.keys(expected)) {
    assert.ok(Object.hasOwn(decoded, key), `${path}.${key} is an own property`);
    assertProtoKeysAreData(decoded[key], expected[key], `${path}.${key}`);
  }
}

test('values_round_trip_as_json_parse_of_json_stringify', () => {
  for (const [name, value] of allSamples()) {
    const expected = viaJson(value);
    const decoded = fromValueBytes(toValueBytes(value));
    assert.deepStrictEqual(decoded, expected, name);
    // Same keys in the same order, "__proto__" included.
    assert.equal(JSON.stringify(decoded), JSON.stringify(value), name);
    assertProtoKeysAreData(decoded, expected, name);
  }
  assert.equal({}.polluted, undefined, 'decoding never touches Object.prototype');
});

test('a_proto_key_is_an_own_property_and_never_the_prototype', () => {
  const decoded = fromValueBytes(toValueBytes(JSON.parse('{"__proto__": {"x": 1}, "a": {"__proto__": [2]}}')));
  assert.deepEqual(Object.keys(decoded), ['__proto__', 'a']);
  assert.equal(Object.getPrototypeOf(decoded), Object.prototype);
  assert.deepEqual(Object.getOwnPropertyDescriptor(decoded, '__proto__'), { value: { x: 1 }, enumerable: true, writable: true, configurable: true });
  assert.equal(decoded.x, undefined);
  assert.deepEqual(Object.getOwnPropertyDescriptor(decoded.a, '__proto__').value, [2]);
  assert.equal(typeof decoded.hasOwnProperty, 'function', 'a normal object, as JSON.parse builds');
});

test('the_encoder_writes_what_protobufjs_writes', () => {
  const objectForm = (json) => {
    if (json === null) return { nullValue: 0 };
    if (Array.isArray(json)) return { listValue: { values: json.map(objectForm) } };
    switch (typeof json) {
      case 'number':
        return { numberValue: json };
      case 'string':
        return { stringValue: json };
      case 'boolean':
        return { boolValue: json };
      default:
        return { structValue: { fields: Object.fromEntries(Object.entries(json).map(([k, v]) => [k, objectForm(v)])) } };
    }
  };
  for (const [name, value] of plainSamples()) {
    const json = viaJson(value);
    const theirs = Buffer.from(ValueType.encode(ValueType.fromObject(objectForm(json))).finish());
    const ours = Buffer.from(toValueBytes(value));
    if (!ours.equals(theirs)) assert.fail(`${name}: ours ${ours.toString('hex').slice(0, 200)} != protobufjs ${theirs.toString('hex').slice(0, 200)}`);
    // And the decoder reads protobufjs's bytes.
    assert.deepStrictEqual(fromValueBytes(theirs), json, name);
  }
});

test('lone_surrogates_become_replacement_characters', () => {
  for (const [input, expected] of [
    ['a\ud800b', 'a\ufffdb'],
    ['\udc00', '\ufffd'],
    ['x'.repeat(50) + '\ud83d', 'x'.repeat(50) + '\ufffd'],
    ['\ude00\ud83d', '\ufffd\ufffd'],
  ]) {
    const bytes = Buffer.from(toValueBytes({ [input]: input }));
    assert.ok(!bytes.includes(Buffer.from([0xed])), 'no surrogate is written as CESU-8 (the engine refuses it)');
    assert.deepEqual(fromValueBytes(bytes), { [expected]: expected });
  }
});

test('unencodable_values_are_refused_as_json_stringify_refuses_them', () => {
  for (const value of [1n, { big: 1n }, [1n], { nested: { list: [Object(2n)] } }]) {
    assert.throws(() => toValueBytes(value), { name: 'TypeError', message: 'Do not know how to serialize a BigInt' });
  }
  BigInt.prototype.toJSON = function toJSON() {
    return this.toString();
  };
  try {
    assert.deepEqual(fromValueBytes(toValueBytes({ big: 12n })), { big: '12' }, 'a BigInt toJSON is honoured, as by JSON.stringify');
  } finally {
    delete BigInt.prototype.toJSON;
  }
  const cycle = { a: [{}] };
  cycle.a[0].back = cycle;
  assert.throws(() => toValueBytes(cycle), { name: 'TypeError', message: /circular/ });
  const selfList = [];
  selfList.push(selfList);
  assert.throws(() => toValueBytes(selfList), TypeError);
  // The writer is usable after a failure.
  assert.deepEqual(fromValueBytes(toValueBytes({ ok: 1 })), { ok: 1 });
});

test('a_toJSON_that_encodes_a_payload_itself_does_not_disturb_the_outer_one', () => {
  let inner;
  const outer = toValueBytes({
    before: 'b'.repeat(10),
    a: {
      toJSON() {
        inner = toValueBytes({ inner: ['i'.repeat(300)] });
        return 'x';
      },
    },
    after: [1, 2],
  });
  assert.deepEqual(fromValueBytes(outer), { before: 'b'.repeat(10), a: 'x', after: [1, 2] });
  assert.deepEqual(fromValueBytes(inner), { inner: ['i'.repeat(300)] });
});

/** A varint's bytes. */
function varint(n) {
  const out = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return out;
}

/** `levels` ListValues around a null, as bytes, written outside in (protobufjs cannot nest this deep). */
function nestedListBytes(levels) {
  // sizes[i]: the bytes of the Value i levels above the null.
  const sizes = [2];
  for (let i = 1; i <= levels; i++) {
    const item = 1 + varint(sizes[i - 1]).length + sizes[i - 1];
    sizes.push(1 + varint(item).length + item);
  }
  const out = Buffer.alloc(sizes[levels]);
  let at = 0;
  for (let i = levels; i > 0; i--) {
    const item = 1 + varint(sizes[i - 1]).length + sizes[i - 1];
    for (const byte of [0x32, ...varint(item), 0x0a, ...varint(sizes[i - 1])]) out[at++] = byte;
  }
  out[at++] = 0x08;
  out[at++] = 0x00;
  return out;
}

test('nesting_is_bounded_at_the_engines_depth_both_ways', () => {
  assert.equal(MAX_DEPTH, 100);
  assert.deepEqual(fromValueBytes(toValueBytes(nest(MAX_DEPTH - 1))), nest(MAX_DEPTH - 1));
  assert.throws(() => toValueBytes(nest(MAX_DEPTH)), { name: 'RangeError', message: /nests deeper than 100 levels/ });
  const deepObject = JSON.parse('{"a":'.repeat(MAX_DEPTH) + '1' + '}'.repeat(MAX_DEPTH));
  assert.throws(() => toValueBytes(deepObject), RangeError);
  assert.throws(() => toValueBytes(JSON.parse('[{"a":'.repeat(MAX_DEPTH) + '1' + '}]'.repeat(MAX_DEPTH))), RangeError);
  // A member JSON drops is not written, so it does not count: here it would be level 101.
  let droppedTooDeep = { dropped: undefined };
  for (let i = 0; i < MAX_DEPTH - 1; i++) droppedTooDeep = [droppedTooDeep];
  assert.equal(JSON.stringify(fromValueBytes(toValueBytes(droppedTooDeep))), JSON.stringify(droppedTooDeep));

  assert.deepEqual(fromValueBytes(nestedListBytes(MAX_DEPTH - 1)), nest(MAX_DEPTH - 1));
  assert.throws(() => fromValueBytes(nestedListBytes(MAX_DEPTH)), { message: /nested deeper than 100 levels/ });
  assert.throws(() => fromValueBytes(nestedListBytes(100_000)), { message: /nested deeper than 100 levels/ }, 'no stack overflow');
});

test('the_decoder_accepts_what_protobuf_accepts_and_refuses_the_rest', () => {
  // The cases of switchyard_proto::value_wire's test, which checks them against prost.
  const accepted = [
    [[], null, 'empty: null'],
    [[0x08, 0x00], null, 'null'],
    [[0x1a, 0x02, 0x68, 0x69], 'hi', 'string'],
    [[0x1a, 0x03, 0xc3, 0xa9, 0x21], 'é!', 'non-ASCII string'],
    [[0x2a, 0x07, 0x0a, 0x05, 0x0a, 0x01, 0x6b, 0x12, 0x00], { k: null }, 'object with one entry'],
    [[0x32, 0x04, 0x0a, 0x02, 0x20, 0x01], [true], 'list of true'],
    [[0x38, 0x05, 0x20, 0x01], true, 'unknown field skipped'],
  ];
  for (const [bytes, expected, what] of accepted) assert.deepStrictEqual(fromValueBytes(Buffer.from(bytes)), expected, what);
  const refused = [
    [[0x1a, 0x05, 0x61], /truncated/, 'truncated string'],
    [[0x1a, 0x01, 0xff], /not UTF-8/, 'invalid UTF-8'],
    [[0x1a, 0x03, 0xed, 0xa0, 0x80], /not UTF-8/, 'a surrogate as CESU-8'],
    [[0x2a, 0x05, 0x0a, 0x03, 0x0a, 0x01, 0xff], /not UTF-8/, 'a key that is not UTF-8'],
    [[0x18, 0x01], /wrong wire type/, 'a string field as a varint'],
    [[0x22, 0x00], /wrong wire type/, 'a bool field as bytes'],
    [[0x00, 0x00], /field 0/, 'field 0'],
    [[0x2a, 0x02, 0x08, 0x01], /wrong wire type/, 'an object whose entry is a varint'],
    [[0x2a, 0x04, 0x0a, 0x02, 0x08, 0x01], /wrong wire type/, 'an entry whose key is a varint'],
    [[0x32, 0x02, 0x08, 0x01], /wrong wire type/, 'a list whose value is a varint'],
    [[0x0f], /wire type/, 'wire type 7'],
    [[0x3b], /wire type/, 'a group (wire type 3)'],
    [[0x80], /truncated/, 'unterminated varint'],
    [[0x38, ...Array(10).fill(0x80), 0x01], /10 bytes/, 'a varint longer than 10 bytes'],
    [[0x11, 0, 0, 0, 0], /truncated/, 'a short double'],
    [[0x2a, 0x03, 0x0a, 0x05, 0x0a], /truncated/, 'an entry longer than its object'],
  ];
  for (const [bytes, message, what] of refused) {
    assert.throws(() => fromValueBytes(Buffer.from(bytes)), { name: 'Error', message }, what);
    assert.throws(() => fromValueBytes(Buffer.from(bytes)), /^Error: switchyard: payload is not a google.protobuf.Value: /, what);
  }
});

test('the_decoder_refuses_every_truncation_of_a_value', () => {
  for (const [name, value] of allSamples()) {
    const bytes = Buffer.from(toValueBytes(value));
    if (bytes.length > 2_000) continue;
    // A top-level Value is one field, so every non-empty proper prefix cuts it short.
    for (let cut = 1; cut < bytes.length; cut++) {
      assert.throws(() => fromValueBytes(bytes.subarray(0, cut)), /truncated/, `${name} cut at ${cut}`);
    }
  }
});

test('the_decoder_reads_as_protobuf_does', () => {
  const decode = (bytes) => fromValueBytes(Buffer.from(bytes));
  /** A length-delimited field. */
  const field = (key, content) => [key, ...varint(content.length), ...content];
  const number = (n) => {
    const bytes = Buffer.alloc(9);
    bytes[0] = 0x11;
    bytes.writeDoubleLE(n, 1);
    return [...bytes];
  };
  const entry = (key, value) => field(0x0a, [...field(0x0a, [...Buffer.from(key)]), ...field(0x12, value)]);

  assert.equal(decode([0x1a, 0x01, 0x61, 0x20, 0x01]), true, 'the last kind wins');
  assert.deepEqual(decode(field(0x2a, [0x0a, 0x00])), { '': null }, 'an entry without key or value');
  assert.deepEqual(decode(field(0x2a, [...entry('a', number(1)), ...entry('b', number(2)), ...entry('a', number(3))])), { a: 3, b: 2 }, 'a repeated key keeps its last value');
  const protoTwice = decode(field(0x2a, [...entry('__proto__', number(1)), ...entry('__proto__', number(2))]));
  assert.deepEqual(Object.getOwnPropertyDescriptor(protoTwice, '__proto__'), { value: 2, enumerable: true, writable: true, configurable: true });
  assert.equal(Object.getPrototypeOf(protoTwice), Object.prototype);

  // Unknown fields (7: varint, 8: fixed64, 9: bytes, 10: fixed32) are skipped at every level.
  const unknown = [0x38, 0x01, 0x41, ...Array(8).fill(0), ...field(0x4a, [0x00]), 0x55, 0, 0, 0, 0];
  assert.equal(decode([...unknown, 0x1a, 0x00, ...unknown]), '');
  const entryWithUnknowns = field(0x0a, [...unknown, ...field(0x0a, [0x6b]), ...unknown, ...field(0x12, [...unknown, 0x20, 0x01])]);
  assert.deepEqual(decode(field(0x2a, [...unknown, ...entryWithUnknowns, ...unknown])), { k: true });
  assert.deepEqual(decode(field(0x32, [...unknown, 0x0a, 0x00, ...unknown])), [null]);

  for (const n of [NaN, Infinity, -Infinity]) assert.equal(decode(number(n)), null, `${n}, which JSON cannot hold, reads as null`);
  assert.deepEqual(decode(field(0x32, [...field(0x0a, number(NaN)), ...field(0x0a, number(2))])), [null, 2]);

  assert.equal(fromValueBytes(undefined), null);
  assert.equal(fromValueBytes(null), null);
  assert.equal(fromValueBytes(Object.freeze([])), null, "protobufjs's default for an unset bytes field");
  assert.equal(fromValueBytes(new Uint8Array([0x1a, 0x02, 0x68, 0x69])), 'hi', 'a plain Uint8Array');
  const view = new Uint8Array([0xff, 0x1a, 0x01, 0x78, 0xff]).subarray(1, 4);
  assert.equal(fromValueBytes(view), 'x', 'a view into a larger buffer');
});

//! Parity with `serde_json`: every case is run both ways — through `serde_json::Value`
//! (`to_value` + prost's encoding, `decode_value` + `from_value`) and straight through the
//! wire bytes — and the answers (values, or error texts) must be the same.

use super::*;
use crate::json::{decode_value, from_proto, to_proto};
use prost::Message;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;

/// `v` as prost writes it: the independent writer the serializer is checked against.
fn prost_bytes(v: &Value) -> Vec<u8> {
    to_proto(v).encode_to_vec()
}

/// `to_wire(x)` decodes to `to_value(x)` (with `decode_value` and with prost), or both fail
/// with the same text. Returns the bytes when they succeed.
fn ser_same<T: Serialize + ?Sized>(x: &T) -> Option<Vec<u8>> {
    match (serde_json::to_value(x), to_wire(x)) {
        (Ok(want), Ok(bytes)) => {
            let want = decode_value(&prost_bytes(&want)).expect("prost's bytes decode");
            assert_eq!(decode_value(&bytes).expect("to_wire's bytes decode"), want);
            let prost = prost_types::Value::decode(bytes.as_slice()).expect("prost reads to_wire's bytes");
            assert_eq!(from_proto(&prost), want, "as prost reads it");
            Some(bytes)
        }
        (Err(want), Err(got)) => {
            assert_eq!(got.to_string(), want.to_string());
            None
        }
        (want, got) => panic!("to_value: {want:?}, to_wire: {got:?}"),
    }
}

/// `from_wire::<T>(bytes)` is `from_value::<T>(decode_value(bytes))`: the same value, or
/// the same error text.
fn de_same<T: serde::de::DeserializeOwned + PartialEq + Debug>(bytes: &[u8]) -> Result<T, String> {
    let want = serde_json::from_value::<T>(decode_value(bytes).expect("a Value"));
    let got = from_wire::<T>(bytes);
    match (want, got) {
        (Ok(want), Ok(got)) => {
            assert_eq!(got, want);
            Ok(got)
        }
        (Err(want), Err(FromWireError::DoesNotFit(got))) => {
            assert_eq!(got.to_string(), want.to_string());
            Err(got.to_string())
        }
        (want, got) => panic!("from_value: {want:?}, from_wire: {got:?}"),
    }
}

fn de_json<T: serde::de::DeserializeOwned + PartialEq + Debug>(v: Value) -> Result<T, String> {
    de_same(&prost_bytes(&v))
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Order {
    order_id: String,
    amount: u64,
    note: Option<String>,
    lines: Vec<Line>,
    kind: Kind,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Line {
    sku: String,
    qty: i32,
    price: f64,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
enum Kind {
    Unit,
    Newtype(i32),
    Tuple(i32, String),
    Struct { a: u8, b: Vec<bool> },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
enum Internal {
    A { x: i32 },
    B { y: String },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", content = "c")]
enum Adjacent {
    A(i32),
    B { y: String },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
enum Untagged {
    N(u32),
    S(String),
    L(Vec<Untagged>),
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
struct UnitStruct;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
struct Newtype(String);

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct TupleStruct(i32, f64, String);

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Flat {
    a: i32,
    #[serde(flatten)]
    rest: BTreeMap<String, i32>,
}

fn order() -> Order {
    Order {
        order_id: "ord_789".into(),
        amount: 4200,
        note: None,
        lines: vec![Line { sku: "s1".into(), qty: -2, price: 9.99 }, Line { sku: "é✓".into(), qty: 1, price: 0.0 }],
        kind: Kind::Struct { a: 7, b: vec![true, false] },
    }
}

#[test]
fn serializer_matches_to_value() {
    ser_same(&order());
    for kind in [Kind::Unit, Kind::Newtype(-3), Kind::Tuple(1, "x".into()), Kind::Struct { a: 0, b: vec![] }] {
        ser_same(&kind);
        ser_same(&vec![kind.clone(), kind]);
    }
    ser_same(&Internal::A { x: 1 });
    ser_same(&Adjacent::A(1));
    ser_same(&Adjacent::B { y: "y".into() });
    ser_same(&Untagged::L(vec![Untagged::N(1), Untagged::S("s".into())]));
    ser_same(&UnitStruct);
    ser_same(&Newtype("n".into()));
    ser_same(&TupleStruct(1, 2.5, "t".into()));
    ser_same(&());
    ser_same(&(1u8, "two", 3.0f32, [4i64; 3], ((), Some(5))));
    ser_same(&Some(Some(1)));
    ser_same(&None::<i32>);
    ser_same(&Vec::<i32>::new());
    ser_same(&BTreeMap::<String, i32>::new());
    ser_same(&json!({}));
    ser_same(&json!([[], {}, [{}]]));
    ser_same(&'x');
    ser_same(&'✓');
    ser_same(&"");
    ser_same(&true);
    // Numbers: integers beyond 2^53 and negative ones become doubles; NaN and ±inf null.
    for n in [0u64, 1, 1 << 53, (1 << 53) + 1, u64::MAX] {
        ser_same(&n);
    }
    for n in [-1i64, i64::MIN, -(1 << 53) - 1] {
        ser_same(&n);
    }
    // (Byte for byte too: a reader other than decode_value would see a NaN number.)
    for n in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0, 1e300, 0.1] {
        ser_same(&n);
        ser_same(&vec![n]);
        assert_eq!(to_wire(&n).unwrap(), prost_bytes(&serde_json::to_value(n).unwrap()), "{n}");
    }
    for n in [f32::NAN, f32::INFINITY, 0.1, -1.5] {
        ser_same(&n);
        assert_eq!(to_wire(&n).unwrap(), prost_bytes(&serde_json::to_value(n).unwrap()), "{n}");
    }
    ser_same(&i128::from(i64::MIN));
    ser_same(&u128::from(u64::MAX));
    // Bytes are an array of numbers.
    struct Bytes<'a>(&'a [u8]);
    impl Serialize for Bytes<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(self.0)
        }
    }
    ser_same(&Bytes(b"\x00\x01\xff"));
    ser_same(&Bytes(&[7; 300]));
    // A serde_json::Value written by the serializer is byte for byte what prost writes
    // (both in the map's sorted order).
    let v = json!({"b": [1, "x", null, {"c": 1.5}], "a": {"z": true, "y": "long".repeat(100)}});
    assert_eq!(to_wire(&v).unwrap(), prost_bytes(&v));
}

#[test]
fn serializer_back_patches_long_and_deep_messages() {
    // Lengths of one, two and three varint bytes, at several levels.
    for len in [0, 100, 127, 128, 200, 16_383, 16_384, 70_000] {
        let s = "x".repeat(len);
        let v = json!({"k": s, "list": [s, {"in": [s]}]});
        assert_eq!(to_wire(&v).unwrap(), prost_bytes(&v), "{len}");
        ser_same(&Order { order_id: s.clone(), note: Some(s.clone()), ..order() });
        ser_same(&Kind::Tuple(1, s.clone()));
    }
    // Nesting up to the depth the reader takes (100 values deep).
    let mut deep = json!(null);
    for i in 0..99 {
        deep = if i % 2 == 0 { json!([deep]) } else { json!({ "k": deep }) };
    }
    // (Not through `ser_same`: prost counts every message, not every value, and stops
    // sooner.)
    let bytes = to_wire(&deep).unwrap();
    assert_eq!(bytes, prost_bytes(&deep));
    assert_eq!(decode_value(&bytes).unwrap(), deep);
    assert!(decode_value(&to_wire(&json!([deep])).unwrap()).is_err(), "101 deep is refused");
}

#[test]
fn serializer_map_keys_follow_serde_json() {
    ser_same(&HashMap::from([(1i32, "a"), (-2, "b")]));
    ser_same(&BTreeMap::from([(u64::MAX, 1), (0, 2)]));
    ser_same(&BTreeMap::from([(i128::MIN, 1)]));
    ser_same(&BTreeMap::from([('c', 1)]));
    ser_same(&BTreeMap::from([(true, 1), (false, 2)]));
    ser_same(&BTreeMap::from([(Kind::Unit, 1)]));
    ser_same(&BTreeMap::from([(Newtype("k".into()), 1)]));
    // Float keys are written as serde_json writes them; non-finite ones are refused.
    #[derive(Serialize)]
    struct F(f64);
    struct FloatKeys(Vec<(F, i32)>);
    impl Serialize for FloatKeys {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_map(self.0.iter().map(|(k, v)| (k, v)))
        }
    }
    for k in [1.0, 0.5, 1e21, -0.0, f64::NAN, f64::INFINITY] {
        ser_same(&FloatKeys(vec![(F(k), 1), (F(2.0), 2)]));
    }
    // Keys serde_json refuses.
    assert!(ser_same(&BTreeMap::from([(Kind::Newtype(1), 1)])).is_none());
    assert!(ser_same(&BTreeMap::from([(vec![1u8], 1)])).is_none());
    assert!(ser_same(&BTreeMap::from([((), 1)])).is_none());
    assert!(ser_same(&BTreeMap::from([(Some(1), 1)])).is_none());
    assert!(ser_same(&BTreeMap::from([((1, 2), 1)])).is_none());
    assert!(ser_same(&BTreeMap::from([(UnitStruct, 1)])).is_none());
    assert_eq!(to_wire(&BTreeMap::from([((), 1)])).unwrap_err().to_string(), "key must be a string");
    // Numbers serde_json cannot hold.
    assert!(ser_same(&i128::MIN).is_none());
    assert!(ser_same(&u128::MAX).is_none());
}

#[test]
fn serializer_keeps_the_last_of_duplicate_keys() {
    // A flattened map that repeats a field: to_value keeps the later one, and so does the
    // reader of the bytes (the entries are both written).
    ser_same(&Flat { a: 1, rest: BTreeMap::from([("a".into(), 2), ("b".into(), 3)]) });
    // A key written twice before its value replaces the first; a key without a value is
    // dropped (as serde_json drops it).
    struct Odd;
    impl Serialize for Odd {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeMap;
            let mut m = s.serialize_map(None)?;
            m.serialize_key("x")?;
            m.serialize_key("y")?;
            m.serialize_value(&1)?;
            m.serialize_entry("y", &2)?;
            m.serialize_key("dangling")?;
            m.end()
        }
    }
    let bytes = ser_same(&Odd).unwrap();
    assert_eq!(decode_value(&bytes).unwrap(), json!({"y": 2}));
}

#[test]
fn serializer_passes_on_the_callers_errors() {
    struct Fails;
    impl Serialize for Fails {
        fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
            Err(serde::ser::Error::custom("no thanks"))
        }
    }
    assert!(ser_same(&Fails).is_none());
    assert!(ser_same(&vec![Fails]).is_none());
    assert!(ser_same(&BTreeMap::from([("k", Fails)])).is_none());
    struct FailingKey;
    impl Serialize for FailingKey {
        fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
            Err(serde::ser::Error::custom("bad key"))
        }
    }
    struct M;
    impl Serialize for M {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_map([(FailingKey, 1)])
        }
    }
    assert_eq!(to_wire(&M).unwrap_err().to_string(), "bad key");
    assert!(ser_same(&M).is_none());
}

#[test]
fn deserializer_matches_from_value() {
    let o = order();
    let bytes = to_wire(&o).unwrap();
    assert_eq!(de_same::<Order>(&bytes).unwrap(), o);
    assert_eq!(de_same::<Value>(&bytes).unwrap(), decode_value(&bytes).unwrap());
    for kind in [Kind::Unit, Kind::Newtype(-3), Kind::Tuple(1, "x".into()), Kind::Struct { a: 0, b: vec![] }] {
        assert_eq!(de_same::<Kind>(&to_wire(&kind).unwrap()).unwrap(), kind);
    }
    assert_eq!(de_json::<Internal>(json!({"type": "B", "y": "s"})).unwrap(), Internal::B { y: "s".into() });
    assert_eq!(de_json::<Adjacent>(json!({"t": "A", "c": 5})).unwrap(), Adjacent::A(5));
    assert_eq!(
        de_json::<Untagged>(json!([1, "s", [2]])).unwrap(),
        Untagged::L(vec![Untagged::N(1), Untagged::S("s".into()), Untagged::L(vec![Untagged::N(2)])])
    );
    de_json::<UnitStruct>(json!(null)).unwrap();
    de_json::<Newtype>(json!("n")).unwrap();
    de_json::<TupleStruct>(json!([1, 2, "t"])).unwrap();
    de_json::<()>(json!(null)).unwrap();
    de_json::<(u8, String, Option<bool>)>(json!([1, "s", null])).unwrap();
    de_json::<Option<Option<i32>>>(json!(null)).unwrap();
    de_json::<Option<Option<i32>>>(json!(3)).unwrap();
    de_json::<char>(json!("✓")).unwrap();
    de_json::<Vec<u8>>(json!([0, 255])).unwrap();
    de_json::<Flat>(json!({"a": 1, "b": 2})).unwrap();
    de_json::<HashMap<String, Value>>(json!({"a": [1, {"b": null}], "": ""})).unwrap();
    de_json::<BTreeMap<String, ()>>(json!({})).unwrap();
    de_json::<Vec<()>>(json!([])).unwrap();
    // A struct may come as an array of its fields, as serde_json allows.
    assert_eq!(de_json::<Line>(json!(["s", 1, 2.5])).unwrap(), Line { sku: "s".into(), qty: 1, price: 2.5 });
    // An enum variant may come as {variant: null} for a unit variant.
    assert_eq!(de_json::<Kind>(json!({"Unit": null})).unwrap(), Kind::Unit);
}

#[test]
fn deserializer_fails_where_from_value_fails() {
    let errors = [
        de_json::<Order>(json!({"orderId": 5})).map(drop),
        de_json::<Order>(json!({"orderId": "o"})).map(drop),
        de_json::<Order>(json!([])).map(drop),
        de_json::<Order>(json!("order")).map(drop),
        // Two wrong fields, written out of order: the same one is reported.
        de_json::<Line>(json!({"sku": 1, "qty": "x", "price": 1})).map(drop),
        de_same::<Line>(&to_wire(&BTreeMap::from([("sku", json!(1)), ("qty", json!("x"))])).unwrap()).map(drop),
        de_same::<Line>(&{
            // sku, qty, price on the wire: both sku and qty are wrong, and serde_json
            // (its map sorted) meets qty first.
            #[derive(Serialize)]
            struct Reversed {
                sku: i32,
                qty: &'static str,
                price: f64,
            }
            to_wire(&Reversed { sku: 1, qty: "x", price: 1.0 }).unwrap()
        })
        .map(drop),
        de_json::<Kind>(json!({"Unit": 5})).map(drop),
        de_json::<Kind>(json!({"Newtype": 1, "Unit": null})).map(drop),
        de_json::<Kind>(json!({})).map(drop),
        de_json::<Kind>(json!("Nope")).map(drop),
        de_json::<Kind>(json!("Newtype")).map(drop),
        de_json::<Kind>(json!({"Tuple": []})).map(drop),
        de_json::<Kind>(json!({"Tuple": 1})).map(drop),
        de_json::<Kind>(json!({"Struct": [1]})).map(drop),
        de_json::<Kind>(json!(3)).map(drop),
        de_json::<Internal>(json!({"type": "C"})).map(drop),
        de_json::<Untagged>(json!(true)).map(drop),
        de_json::<UnitStruct>(json!(0)).map(drop),
        de_json::<char>(json!("ab")).map(drop),
        de_json::<bool>(json!("true")).map(drop),
        de_json::<String>(json!(null)).map(drop),
        de_json::<(u8, u8)>(json!([1, 2, 3])).map(drop),
        de_json::<(u8, u8)>(json!([1])).map(drop),
        de_json::<Vec<u8>>(json!({})).map(drop),
        de_json::<HashMap<String, i32>>(json!([])).map(drop),
    ];
    for e in errors {
        assert!(e.is_err(), "{e:?}");
    }
}

#[test]
fn deserializer_reads_numbers_as_from_value_does() {
    // Whole doubles below 2^53 are integers; others are floats, which integer fields refuse.
    assert_eq!(de_json::<u8>(json!(3.0)), Ok(3));
    assert_eq!(de_json::<i64>(json!(-3.0)), Ok(-3));
    assert_eq!(de_json::<u64>(json!(-0.0)), Ok(0));
    assert_eq!(de_json::<u64>(json!(9_007_199_254_740_991u64)), Ok(9_007_199_254_740_991));
    assert_eq!(de_json::<i64>(json!(-9_007_199_254_740_991i64)), Ok(-9_007_199_254_740_991));
    assert!(de_json::<u64>(json!(9_007_199_254_740_992u64)).is_err());
    assert!(de_json::<u64>(json!(u64::MAX)).is_err());
    assert!(de_json::<i64>(json!(i64::MIN)).is_err());
    assert!(de_json::<u8>(json!(3.5)).is_err());
    assert!(de_json::<u8>(json!(-1)).is_err());
    assert!(de_json::<u8>(json!(300)).is_err());
    assert!(de_json::<u32>(json!("3")).is_err());
    assert_eq!(de_json::<f64>(json!(3)), Ok(3.0));
    assert_eq!(de_json::<f32>(json!(0.5)), Ok(0.5));
    assert_eq!(de_json::<f64>(json!(1e300)), Ok(1e300));
    assert_eq!(de_json::<i128>(json!(-5)), Ok(-5));
    assert_eq!(de_json::<u128>(json!(5)), Ok(5));
    // NaN and ±inf on the wire are null.
    for n in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let mut bytes = vec![0x11];
        bytes.extend_from_slice(&n.to_le_bytes());
        assert!(de_same::<f64>(&bytes).is_err());
        assert_eq!(de_same::<Option<f64>>(&bytes), Ok(None));
        assert_eq!(de_same::<Value>(&bytes), Ok(Value::Null));
    }
    // Map keys read as numbers and bools the way serde_json reads them.
    assert_eq!(de_json::<BTreeMap<u32, i32>>(json!({"1": 1, "20": 2})), Ok(BTreeMap::from([(1, 1), (20, 2)])));
    assert_eq!(de_json::<BTreeMap<i8, i32>>(json!({"-5": 1})), Ok(BTreeMap::from([(-5, 1)])));
    assert_eq!(de_json::<BTreeMap<F64Key, i32>>(json!({"1.5": 1})).map(|m| m.len()), Ok(1));
    assert_eq!(de_json::<BTreeMap<bool, i32>>(json!({"true": 1})), Ok(BTreeMap::from([(true, 1)])));
    assert_eq!(de_json::<BTreeMap<Kind, i32>>(json!({"Unit": 1})), Ok(BTreeMap::from([(Kind::Unit, 1)])));
    assert_eq!(de_json::<BTreeMap<Newtype, i32>>(json!({"k": 1})), Ok(BTreeMap::from([(Newtype("k".into()), 1)])));
    for bad in ["x", "01", "+1", "1 ", " 1", "1.0", "1e2", "300", "-1", ""] {
        assert!(de_json::<BTreeMap<u8, i32>>(json!({ bad: 1 })).is_err(), "{bad}");
        assert!(de_json::<BTreeMap<u32, i32>>(json!({ bad: 1, "1": 1 })).is_err() || bad == "300", "{bad}");
    }
    assert_eq!(de_json::<BTreeMap<u32, i32>>(json!({"300": 1})), Ok(BTreeMap::from([(300, 1)])));
    assert!(de_json::<BTreeMap<bool, i32>>(json!({"yes": 1})).is_err());
    assert!(de_json::<BTreeMap<Kind, i32>>(json!({"Newtype": 1})).is_err());
}

/// A float map key (f64 is not `Ord`).
#[derive(Debug, PartialEq, Deserialize)]
struct F64Key(f64);
impl Eq for F64Key {}
impl PartialOrd for F64Key {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for F64Key {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

#[test]
fn deserializer_reads_odd_wire_bytes_as_decode_value_does() {
    // A struct {a: 1, a: "two"}: one entry per key, the last wins.
    let entry = |k: &str, v: &Value| {
        let mut e = vec![0x0a, k.len() as u8];
        e.extend_from_slice(k.as_bytes());
        let v = prost_bytes(v);
        e.push(0x12);
        e.push(v.len() as u8);
        e.extend_from_slice(&v);
        e
    };
    let object = |entries: &[Vec<u8>]| {
        let body: Vec<u8> = entries.iter().flat_map(|e| [vec![0x0a, e.len() as u8], e.clone()].concat()).collect();
        [vec![0x2a, body.len() as u8], body].concat()
    };
    #[derive(Debug, PartialEq, Deserialize)]
    struct A {
        a: String,
    }
    let dup = object(&[entry("a", &json!(1)), entry("a", &json!("two"))]);
    assert_eq!(de_same::<A>(&dup).unwrap(), A { a: "two".into() });
    assert_eq!(
        de_same::<Kind>(&object(&[entry("Newtype", &json!("x")), entry("Newtype", &json!(2))])),
        Ok(Kind::Newtype(2))
    );
    // Unknown fields are skipped; the last kind field wins.
    let mut odd = vec![0x38, 0x05, 0x20, 0x01];
    odd.extend_from_slice(&[0x1a, 0x01, b'z']);
    assert_eq!(de_same::<String>(&odd).unwrap(), "z");
    assert_eq!(de_same::<Value>(&[]).unwrap(), Value::Null);
    assert_eq!(de_same::<Option<u8>>(&[]).unwrap(), None);
    // An entry with no value is null.
    let no_value = [0x2a, 0x05, 0x0a, 0x03, 0x0a, 0x01, b'k'];
    assert_eq!(de_same::<HashMap<String, Option<i32>>>(&no_value).unwrap(), HashMap::from([("k".into(), None)]));
}

#[test]
fn deserializer_refuses_bytes_that_are_not_a_value() {
    // Even where the type would not look at the broken part.
    for bad in [&[0x1a, 0x05, b'a'][..], &[0x1a, 0x01, 0xff], &[0x11, 0, 0], &[0x0f], &[0x80]] {
        assert!(matches!(from_wire::<serde::de::IgnoredAny>(bad), Err(FromWireError::NotAValue(_))), "{bad:?}");
    }
    let broken_field = [0x2a, 0x07, 0x0a, 0x05, 0x0a, 0x01, b'x', 0x12, 0x05];
    assert!(decode_value(&broken_field).is_err());
    assert!(matches!(
        from_wire::<HashMap<String, serde::de::IgnoredAny>>(&broken_field),
        Err(FromWireError::NotAValue(_))
    ));
    let mut deep = json!(1);
    for _ in 0..99 {
        deep = json!([deep]);
    }
    assert!(from_wire::<Value>(&prost_bytes(&deep)).is_ok());
    assert!(matches!(from_wire::<Value>(&prost_bytes(&json!([deep]))), Err(FromWireError::NotAValue(_))));
}

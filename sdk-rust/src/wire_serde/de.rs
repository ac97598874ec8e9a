//! The deserializer: `google.protobuf.Value` wire bytes read into any `T: Deserialize`,
//! method for method as `serde_json::Value`'s own `Deserializer` reads the value that
//! [`crate::json::decode_value`] would build (see the parent module's invariant). Nested
//! messages are read only when a visitor asks for them; an object's entries are sorted and
//! de-duplicated first, as `serde_json::Map` holds them.

use crate::json::{self, WireKind, WireNumber};
use serde::de::{
    self, DeserializeSeed, Deserializer as _, EnumAccess, Error as _, IntoDeserializer, MapAccess, SeqAccess,
    Unexpected, VariantAccess, Visitor,
};
use serde::forward_to_deserialize_any;
use serde_json::Error;

/// One value, as the `serde_json::Value` it stands for.
#[derive(Clone, Copy)]
enum Json<'a> {
    Null,
    Bool(bool),
    PosInt(u64),
    NegInt(i64),
    Float(f64),
    String(&'a str),
    /// A `Struct` message body, read at `depth`.
    Object(&'a [u8]),
    /// A `ListValue` message body, read at `depth`.
    Array(&'a [u8]),
}

impl Json<'_> {
    fn unexpected(&self) -> Unexpected<'_> {
        match *self {
            Json::Null => Unexpected::Unit,
            Json::Bool(b) => Unexpected::Bool(b),
            Json::PosInt(u) => Unexpected::Unsigned(u),
            Json::NegInt(i) => Unexpected::Signed(i),
            Json::Float(f) => Unexpected::Float(f),
            Json::String(s) => Unexpected::Str(s),
            Json::Array(_) => Unexpected::Seq,
            Json::Object(_) => Unexpected::Map,
        }
    }
}

pub(super) struct ValueDeserializer<'a> {
    json: Json<'a>,
    /// The nesting of this value (1 at the top).
    depth: u32,
}

fn broken(e: json::DecodeError) -> Error {
    Error::custom(e)
}

impl<'a> ValueDeserializer<'a> {
    pub fn new(bytes: &'a [u8], depth: u32) -> Result<Self, Error> {
        let json = match json::kind(bytes, depth).map_err(broken)? {
            WireKind::Null => Json::Null,
            WireKind::Bool(b) => Json::Bool(b),
            WireKind::Number(n) => match WireNumber::of(n) {
                WireNumber::PosInt(u) => Json::PosInt(u),
                WireNumber::NegInt(i) => Json::NegInt(i),
                WireNumber::Float(f) => Json::Float(f),
                WireNumber::Null => Json::Null,
            },
            WireKind::String(s) => Json::String(s),
            WireKind::Struct(b) => Json::Object(b),
            WireKind::List(b) => Json::Array(b),
        };
        Ok(Self { json, depth })
    }

    #[cold]
    fn invalid_type(&self, expected: &dyn de::Expected) -> Error {
        Error::invalid_type(self.json.unexpected(), expected)
    }

    fn number<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.json {
            Json::PosInt(u) => visitor.visit_u64(u),
            Json::NegInt(i) => visitor.visit_i64(i),
            Json::Float(f) => visitor.visit_f64(f),
            _ => Err(self.invalid_type(&visitor)),
        }
    }
}

macro_rules! numbers {
    ($($method:ident)*) => {
        $(fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            self.number(visitor)
        })*
    };
}

impl<'de> de::Deserializer<'de> for ValueDeserializer<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.json {
            Json::Null => visitor.visit_unit(),
            Json::Bool(b) => visitor.visit_bool(b),
            Json::PosInt(u) => visitor.visit_u64(u),
            Json::NegInt(i) => visitor.visit_i64(i),
            Json::Float(f) => visitor.visit_f64(f),
            Json::String(s) => visitor.visit_str(s),
            Json::Array(b) => visit_array(b, self.depth, visitor),
            Json::Object(b) => visit_object(b, self.depth, visitor),
        }
    }

    numbers!(
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
        deserialize_f32 deserialize_f64
    );

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.json {
            Json::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.json {
            Json::Object(b) => {
                let entries = sorted_entries(b, self.depth)?;
                let [(variant, value)] = entries[..] else {
                    return Err(Error::invalid_value(Unexpected::Map, &"map with a single key"));
                };
                let value = ValueDeserializer::new(value, self.depth + 1)?;
                visitor.visit_enum(EnumDeserializer { variant, value: Some(value) })
            }
            Json::String(variant) => visitor.visit_enum(EnumDeserializer { variant, value: None }),
            other => Err(Error::invalid_type(other.unexpected(), &"string or map")),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.json {
            Json::Bool(b) => visitor.visit_bool(b),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_string(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_string(visitor)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.json {
            Json::String(s) => visitor.visit_str(s),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_byte_buf(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.json {
            Json::String(s) => visitor.visit_str(s),
            Json::Array(b) => visit_array(b, self.depth, visitor),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.json {
            Json::Null => visitor.visit_unit(),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.json {
            Json::Array(b) => visit_array(b, self.depth, visitor),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.json {
            Json::Object(b) => visit_object(b, self.depth, visitor),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.json {
            Json::Array(b) => visit_array(b, self.depth, visitor),
            Json::Object(b) => visit_object(b, self.depth, visitor),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_string(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }
}

/// The elements of a list body read at `depth`, as bytes.
fn elements(buf: &[u8]) -> Result<Vec<&[u8]>, Error> {
    json::values(buf).collect::<Result<_, _>>().map_err(broken)
}

fn visit_array<'de, V: Visitor<'de>>(buf: &'de [u8], depth: u32, visitor: V) -> Result<V::Value, Error> {
    let elements = elements(buf)?;
    let len = elements.len();
    let mut seq = SeqDeserializer { iter: elements.into_iter(), depth };
    let out = visitor.visit_seq(&mut seq)?;
    if seq.iter.len() == 0 { Ok(out) } else { Err(Error::invalid_length(len, &"fewer elements in array")) }
}

/// The entries of a struct body read at `depth`, as a `serde_json::Map` holds them:
/// sorted by key, one per key (the last on the wire wins).
fn sorted_entries(buf: &[u8], depth: u32) -> Result<Vec<(&str, &[u8])>, Error> {
    let mut entries: Vec<(&str, &[u8])> = json::entries(buf, depth).collect::<Result<_, _>>().map_err(broken)?;
    entries.sort_by(|a, b| a.0.cmp(b.0)); // stable: equal keys keep their wire order
    entries.dedup_by(|later, kept| {
        let same = later.0 == kept.0;
        if same {
            kept.1 = later.1;
        }
        same
    });
    Ok(entries)
}

fn visit_object<'de, V: Visitor<'de>>(buf: &'de [u8], depth: u32, visitor: V) -> Result<V::Value, Error> {
    let entries = sorted_entries(buf, depth)?;
    let len = entries.len();
    let mut map = MapDeserializer { iter: entries.into_iter(), value: None, depth };
    let out = visitor.visit_map(&mut map)?;
    if map.iter.len() == 0 { Ok(out) } else { Err(Error::invalid_length(len, &"fewer elements in map")) }
}

struct SeqDeserializer<'a> {
    iter: std::vec::IntoIter<&'a [u8]>,
    /// The list's depth; its elements are one deeper.
    depth: u32,
}

impl<'de> SeqAccess<'de> for SeqDeserializer<'de> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, Error> {
        match self.iter.next() {
            Some(v) => seed.deserialize(ValueDeserializer::new(v, self.depth + 1)?).map(Some),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

struct MapDeserializer<'a> {
    iter: std::vec::IntoIter<(&'a str, &'a [u8])>,
    value: Option<&'a [u8]>,
    /// The struct's depth; its values are one deeper.
    depth: u32,
}

impl<'de> MapAccess<'de> for MapDeserializer<'de> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Error> {
        match self.iter.next() {
            Some((key, value)) => {
                self.value = Some(value);
                seed.deserialize(KeyDeserializer { key }).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, Error> {
        match self.value.take() {
            Some(v) => seed.deserialize(ValueDeserializer::new(v, self.depth + 1)?),
            None => Err(Error::custom("value is missing")),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

/// `{variant: value}` or `"variant"`.
struct EnumDeserializer<'a> {
    variant: &'a str,
    value: Option<ValueDeserializer<'a>>,
}

impl<'de> EnumAccess<'de> for EnumDeserializer<'de> {
    type Error = Error;
    type Variant = VariantDeserializer<'de>;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self::Variant), Error> {
        let variant = seed.deserialize(IntoDeserializer::<'de, Error>::into_deserializer(self.variant))?;
        Ok((variant, VariantDeserializer { value: self.value }))
    }
}

struct VariantDeserializer<'a> {
    value: Option<ValueDeserializer<'a>>,
}

impl<'de> VariantAccess<'de> for VariantDeserializer<'de> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        match self.value {
            Some(value) => serde::Deserialize::deserialize(value),
            None => Ok(()),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        match self.value {
            Some(value) => seed.deserialize(value),
            None => Err(Error::invalid_type(Unexpected::UnitVariant, &"newtype variant")),
        }
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        match self.value {
            Some(ValueDeserializer { json: Json::Array(b), depth }) => {
                if elements(b)?.is_empty() {
                    visitor.visit_unit()
                } else {
                    visit_array(b, depth, visitor)
                }
            }
            Some(other) => Err(Error::invalid_type(other.json.unexpected(), &"tuple variant")),
            None => Err(Error::invalid_type(Unexpected::UnitVariant, &"tuple variant")),
        }
    }

    fn struct_variant<V: Visitor<'de>>(self, _fields: &'static [&'static str], visitor: V) -> Result<V::Value, Error> {
        match self.value {
            Some(ValueDeserializer { json: Json::Object(b), depth }) => visit_object(b, depth, visitor),
            Some(other) => Err(Error::invalid_type(other.json.unexpected(), &"struct variant")),
            None => Err(Error::invalid_type(Unexpected::UnitVariant, &"struct variant")),
        }
    }
}

/// An object's key. Strings (field names, `String` keys) are handed over as they are;
/// keys read as numbers, bools or enums go through `serde_json`'s own key reader, so they
/// parse (and fail) exactly as `serde_json::from_value` has them.
struct KeyDeserializer<'a> {
    key: &'a str,
}

/// Which `Deserializer` method to call on `serde_json`'s key reader.
#[derive(Clone, Copy)]
enum KeyAs {
    I8,
    I16,
    I32,
    I64,
    I128,
    U8,
    U16,
    U32,
    U64,
    U128,
    F32,
    F64,
    Bool,
    Enum(&'static str, &'static [&'static str]),
}

impl KeyDeserializer<'_> {
    /// Reads the key with `serde_json`'s key reader: the one key of a one-entry
    /// `serde_json::Map`, which hands it to `visitor` through `how`.
    fn via_json<'de, V: Visitor<'de>>(self, how: KeyAs, visitor: V) -> Result<V::Value, Error> {
        struct Seed<V>(KeyAs, V);
        impl<'de, V: Visitor<'de>> DeserializeSeed<'de> for Seed<V> {
            type Value = V::Value;

            fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
                let Seed(how, v) = self;
                match how {
                    KeyAs::I8 => d.deserialize_i8(v),
                    KeyAs::I16 => d.deserialize_i16(v),
                    KeyAs::I32 => d.deserialize_i32(v),
                    KeyAs::I64 => d.deserialize_i64(v),
                    KeyAs::I128 => d.deserialize_i128(v),
                    KeyAs::U8 => d.deserialize_u8(v),
                    KeyAs::U16 => d.deserialize_u16(v),
                    KeyAs::U32 => d.deserialize_u32(v),
                    KeyAs::U64 => d.deserialize_u64(v),
                    KeyAs::U128 => d.deserialize_u128(v),
                    KeyAs::F32 => d.deserialize_f32(v),
                    KeyAs::F64 => d.deserialize_f64(v),
                    KeyAs::Bool => d.deserialize_bool(v),
                    KeyAs::Enum(name, variants) => d.deserialize_enum(name, variants, v),
                }
            }
        }
        struct OneKey<V>(Seed<V>);
        impl<'de, V: Visitor<'de>> Visitor<'de> for OneKey<V> {
            type Value = V::Value;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a map with one key")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<V::Value, A::Error> {
                let key = map.next_key_seed(self.0)?.ok_or_else(|| A::Error::custom("no key"))?;
                map.next_value::<de::IgnoredAny>()?;
                Ok(key)
            }
        }
        let mut one = serde_json::Map::new();
        one.insert(self.key.to_owned(), serde_json::Value::Null);
        one.deserialize_map(OneKey(Seed(how, visitor)))
    }
}

macro_rules! keys_via_json {
    ($($method:ident => $how:ident)*) => {
        $(fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            self.via_json(KeyAs::$how, visitor)
        })*
    };
}

impl<'de> de::Deserializer<'de> for KeyDeserializer<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_str(self.key)
    }

    keys_via_json!(
        deserialize_i8 => I8 deserialize_i16 => I16 deserialize_i32 => I32 deserialize_i64 => I64
        deserialize_i128 => I128 deserialize_u8 => U8 deserialize_u16 => U16 deserialize_u32 => U32
        deserialize_u64 => U64 deserialize_u128 => U128 deserialize_f32 => F32 deserialize_f64 => F64
        deserialize_bool => Bool
    );

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_some(self) // keys are never null
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.via_json(KeyAs::Enum(name, variants), visitor)
    }

    forward_to_deserialize_any! {
        char str string bytes byte_buf unit unit_struct seq tuple tuple_struct
        map struct identifier ignored_any
    }
}

//! Map keys: the key field of a `Struct` entry, written as `serde_json` makes object keys.
//!
//! Invariant: the key written is the one `serde_json::to_value` would give the entry, or
//! the error it would give. Strings, chars, integers and bools (the common keys) are
//! written directly ([`KeySerializer`]); anything else is asked of `serde_json` itself
//! ([`json_key`]), so its answer and its error text are the ones given.

use super::{FIELD_1, bytes_field};
use serde::ser::{self, Error as _, Impossible, Serialize};
use serde_json::Error;

/// Appends `key` as the key field of an entry whose body starts at the end of `buf`.
pub(super) fn write<T: Serialize + ?Sized>(buf: &mut Vec<u8>, key: &T) -> Result<(), Error> {
    let start = buf.len();
    if key.serialize(KeySerializer { buf: &mut *buf }).is_err() {
        buf.truncate(start);
        let key = json_key(key)?;
        bytes_field(buf, FIELD_1, key.as_bytes());
    }
    Ok(())
}

/// A map key as `serde_json` would make it, asked of `serde_json` (the slow path).
fn json_key<T: Serialize + ?Sized>(key: &T) -> Result<String, Error> {
    struct OneKey<'a, T: ?Sized>(&'a T);
    impl<T: Serialize + ?Sized> Serialize for OneKey<'_, T> {
        fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use ser::SerializeMap;
            let mut map = s.serialize_map(Some(1))?;
            map.serialize_entry(self.0, &())?;
            map.end()
        }
    }
    match serde_json::to_value(OneKey(key))? {
        serde_json::Value::Object(map) if map.len() == 1 => Ok(map.into_iter().next().expect("one key").0),
        _ => Err(Error::custom("key must be a string")),
    }
}

/// The fast path for map keys: writes the key field of an entry for the keys that are
/// common and simple; any other key is an error, and the caller asks `serde_json`.
struct KeySerializer<'b> {
    buf: &'b mut Vec<u8>,
}

impl KeySerializer<'_> {
    fn key(self, key: &str) -> Result<(), Error> {
        bytes_field(self.buf, FIELD_1, key.as_bytes());
        Ok(())
    }
}

/// Not on the fast path.
fn slow() -> Error {
    Error::custom("")
}

/// Integer map keys become their decimal text, as serde_json's key serializer writes them.
macro_rules! integer_keys {
    ($($method:ident: $int:ty),* $(,)?) => {
        $(
            fn $method(self, v: $int) -> Result<(), Error> {
                self.key(&v.to_string())
            }
        )*
    };
}

impl ser::Serializer for KeySerializer<'_> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Impossible<(), Error>;
    type SerializeTuple = Impossible<(), Error>;
    type SerializeTupleStruct = Impossible<(), Error>;
    type SerializeTupleVariant = Impossible<(), Error>;
    type SerializeMap = Impossible<(), Error>;
    type SerializeStruct = Impossible<(), Error>;
    type SerializeStructVariant = Impossible<(), Error>;

    fn serialize_str(self, v: &str) -> Result<(), Error> {
        self.key(v)
    }

    fn serialize_char(self, v: char) -> Result<(), Error> {
        self.key(v.encode_utf8(&mut [0; 4]))
    }

    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        self.key(if v { "true" } else { "false" })
    }

    integer_keys! {
        serialize_i8: i8, serialize_i16: i16, serialize_i32: i32, serialize_i64: i64, serialize_i128: i128,
        serialize_u8: u8, serialize_u16: u16, serialize_u32: u32, serialize_u64: u64, serialize_u128: u128,
    }

    fn serialize_unit_variant(self, _name: &'static str, _index: u32, variant: &'static str) -> Result<(), Error> {
        self.key(variant)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _name: &'static str, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }

    fn collect_str<T: std::fmt::Display + ?Sized>(self, value: &T) -> Result<(), Error> {
        self.key(&value.to_string())
    }

    fn serialize_f32(self, _: f32) -> Result<(), Error> {
        Err(slow())
    }

    fn serialize_f64(self, _: f64) -> Result<(), Error> {
        Err(slow())
    }

    fn serialize_bytes(self, _: &[u8]) -> Result<(), Error> {
        Err(slow())
    }

    fn serialize_none(self) -> Result<(), Error> {
        Err(slow())
    }

    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<(), Error> {
        Err(slow())
    }

    fn serialize_unit(self) -> Result<(), Error> {
        Err(slow())
    }

    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Error> {
        Err(slow())
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), Error> {
        Err(slow())
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Error> {
        Err(slow())
    }

    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Error> {
        Err(slow())
    }

    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeTupleStruct, Error> {
        Err(slow())
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        Err(slow())
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Error> {
        Err(slow())
    }

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, Error> {
        Err(slow())
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        Err(slow())
    }
}

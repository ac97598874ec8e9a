//! The serializer: any `T: Serialize` written as `google.protobuf.Value` wire bytes, shaped
//! as `serde_json::value::Serializer` shapes JSON (see the parent module's invariant).
//!
//! Nested messages (a struct, its map entries, an entry's value, a list, its elements) are
//! length-delimited, and their length is known only once they are written. Each is opened
//! with a one-byte length placeholder and back-patched when it closes ([`open`], [`close`]):
//! - most nested messages in real payloads are under 128 bytes, where the placeholder is
//!   the length and closing is one store;
//! - a longer body is moved right by the extra length bytes (`copy_within`), so a body
//!   nested `d` messages deep may be moved up to `d` times (no worse than measuring
//!   every subtree again at every level, as a writer without back-patching does);
//! - the alternatives cost more on the common path: a fixed 5-byte length (padded varint)
//!   bloats every small job and is not the canonical encoding prost writes; a measuring
//!   pass first would call the caller's `Serialize` twice (and trust it to be
//!   deterministic).
//!
//! On an error the buffer holds a partial message and is thrown away by the caller. Map keys
//! are written by [`key`].

use serde::ser::{self, Error as _, Serialize};
use serde_json::Error;

mod key;

/// Writes one `Value` message (without an outer tag or length) into `buf`.
pub(super) struct ValueSerializer<'b> {
    pub buf: &'b mut Vec<u8>,
}

const NULL: [u8; 2] = [0x08, 0];
const NUMBER: u8 = 0x11;
const STRING: u8 = 0x1a;
const BOOL: u8 = 0x20;
const STRUCT: u8 = 0x2a;
const LIST: u8 = 0x32;
/// `Struct.fields` (a map entry), `ListValue.values`, and a map entry's key.
const FIELD_1: u8 = 0x0a;
/// A map entry's value.
const FIELD_2: u8 = 0x12;

/// Starts a length-delimited field: its tag and a one-byte length placeholder. Returns
/// where its body starts, for [`close`].
fn open(buf: &mut Vec<u8>, tag: u8) -> usize {
    buf.extend_from_slice(&[tag, 0]);
    buf.len()
}

/// Ends the field whose body starts at `body`: writes its length into the placeholder,
/// first moving the body right if the length needs more than one byte.
fn close(buf: &mut Vec<u8>, body: usize) {
    let len = buf.len() - body;
    if len < 0x80 {
        buf[body - 1] = len as u8;
        return;
    }
    let extra = prost::encoding::encoded_len_varint(len as u64) - 1;
    buf.resize(buf.len() + extra, 0);
    buf.copy_within(body..body + len, body + extra);
    let (mut at, mut rest) = (body - 1, len);
    while rest >= 0x80 {
        buf[at] = (rest as u8 & 0x7f) | 0x80;
        rest >>= 7;
        at += 1;
    }
    buf[at] = rest as u8;
}

fn bytes_field(buf: &mut Vec<u8>, tag: u8, bytes: &[u8]) {
    buf.push(tag);
    prost::encoding::encode_varint(bytes.len() as u64, buf);
    buf.extend_from_slice(bytes);
}

fn number(buf: &mut Vec<u8>, n: f64) {
    buf.push(NUMBER);
    buf.extend_from_slice(&n.to_le_bytes());
}

/// Floats as `serde_json::Value::from` takes them: NaN and the infinities are `null`.
fn float(buf: &mut Vec<u8>, n: f64) {
    if n.is_finite() { number(buf, n) } else { buf.extend_from_slice(&NULL) }
}

/// What `serde_json` says about a value it will not take (so the error text is its own).
fn json_error<T: Serialize + ?Sized>(x: &T, otherwise: &str) -> Error {
    serde_json::to_value(x).err().unwrap_or_else(|| Error::custom(otherwise))
}

impl<'b> ser::Serializer for ValueSerializer<'b> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = ListSerializer<'b>;
    type SerializeTuple = ListSerializer<'b>;
    type SerializeTupleStruct = ListSerializer<'b>;
    type SerializeTupleVariant = VariantSerializer<ListSerializer<'b>>;
    type SerializeMap = StructSerializer<'b>;
    type SerializeStruct = StructSerializer<'b>;
    type SerializeStructVariant = VariantSerializer<StructSerializer<'b>>;

    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        self.buf.extend_from_slice(&[BOOL, u8::from(v)]);
        Ok(())
    }

    fn serialize_i8(self, v: i8) -> Result<(), Error> {
        self.serialize_i64(v.into())
    }

    fn serialize_i16(self, v: i16) -> Result<(), Error> {
        self.serialize_i64(v.into())
    }

    fn serialize_i32(self, v: i32) -> Result<(), Error> {
        self.serialize_i64(v.into())
    }

    fn serialize_i64(self, v: i64) -> Result<(), Error> {
        number(self.buf, v as f64);
        Ok(())
    }

    fn serialize_i128(self, v: i128) -> Result<(), Error> {
        if let Ok(u) = u64::try_from(v) {
            self.serialize_u64(u)
        } else if let Ok(i) = i64::try_from(v) {
            self.serialize_i64(i)
        } else {
            Err(json_error(&v, "number out of range"))
        }
    }

    fn serialize_u8(self, v: u8) -> Result<(), Error> {
        self.serialize_u64(v.into())
    }

    fn serialize_u16(self, v: u16) -> Result<(), Error> {
        self.serialize_u64(v.into())
    }

    fn serialize_u32(self, v: u32) -> Result<(), Error> {
        self.serialize_u64(v.into())
    }

    fn serialize_u64(self, v: u64) -> Result<(), Error> {
        number(self.buf, v as f64);
        Ok(())
    }

    fn serialize_u128(self, v: u128) -> Result<(), Error> {
        match u64::try_from(v) {
            Ok(u) => self.serialize_u64(u),
            Err(_) => Err(json_error(&v, "number out of range")),
        }
    }

    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        float(self.buf, v.into());
        Ok(())
    }

    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        float(self.buf, v);
        Ok(())
    }

    fn serialize_char(self, v: char) -> Result<(), Error> {
        self.serialize_str(v.encode_utf8(&mut [0; 4]))
    }

    fn serialize_str(self, v: &str) -> Result<(), Error> {
        bytes_field(self.buf, STRING, v.as_bytes());
        Ok(())
    }

    /// An array of numbers, as `serde_json` has it.
    fn serialize_bytes(self, v: &[u8]) -> Result<(), Error> {
        let list = open(self.buf, LIST);
        for &b in v {
            self.buf.extend_from_slice(&[FIELD_1, 9]);
            number(self.buf, b.into());
        }
        close(self.buf, list);
        Ok(())
    }

    fn serialize_none(self) -> Result<(), Error> {
        self.serialize_unit()
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), Error> {
        self.buf.extend_from_slice(&NULL);
        Ok(())
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Error> {
        self.serialize_unit()
    }

    fn serialize_unit_variant(self, _name: &'static str, _index: u32, variant: &'static str) -> Result<(), Error> {
        self.serialize_str(variant)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _name: &'static str, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }

    /// `{variant: value}`.
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        let (buf, outer) = Outer::open(self.buf, variant);
        value.serialize(ValueSerializer { buf: &mut *buf })?;
        outer.close(buf);
        Ok(())
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<ListSerializer<'b>, Error> {
        let list = open(self.buf, LIST);
        Ok(ListSerializer { buf: self.buf, list })
    }

    fn serialize_tuple(self, len: usize) -> Result<ListSerializer<'b>, Error> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_struct(self, _name: &'static str, len: usize) -> Result<ListSerializer<'b>, Error> {
        self.serialize_seq(Some(len))
    }

    /// `{variant: [fields…]}`.
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<VariantSerializer<ListSerializer<'b>>, Error> {
        let (buf, outer) = Outer::open(self.buf, variant);
        let list = open(buf, LIST);
        Ok(VariantSerializer { inner: ListSerializer { buf, list }, outer })
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<StructSerializer<'b>, Error> {
        let fields = open(self.buf, STRUCT);
        Ok(StructSerializer { buf: self.buf, fields, entry: None })
    }

    fn serialize_struct(self, _name: &'static str, len: usize) -> Result<StructSerializer<'b>, Error> {
        self.serialize_map(Some(len))
    }

    /// `{variant: {fields…}}`.
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<VariantSerializer<StructSerializer<'b>>, Error> {
        let (buf, outer) = Outer::open(self.buf, variant);
        let fields = open(buf, STRUCT);
        Ok(VariantSerializer { inner: StructSerializer { buf, fields, entry: None }, outer })
    }
}

/// The elements of a `ListValue` being written.
pub(super) struct ListSerializer<'b> {
    buf: &'b mut Vec<u8>,
    /// Where the list's body starts.
    list: usize,
}

impl ListSerializer<'_> {
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        let element = open(self.buf, FIELD_1);
        value.serialize(ValueSerializer { buf: &mut *self.buf })?;
        close(self.buf, element);
        Ok(())
    }

    fn finish(self) -> Result<(), Error> {
        close(self.buf, self.list);
        Ok(())
    }
}

/// A sequence, a tuple and a tuple struct are each a list: every element in turn.
macro_rules! list_serializer {
    ($($trait:ident :: $method:ident),*) => {$(
        impl ser::$trait for ListSerializer<'_> {
            type Ok = ();
            type Error = Error;

            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
                self.element(value)
            }

            fn end(self) -> Result<(), Error> {
                self.finish()
            }
        }
    )*};
}

list_serializer!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field
);

/// The entries of a `Struct` being written.
pub(super) struct StructSerializer<'b> {
    buf: &'b mut Vec<u8>,
    /// Where the struct's body starts.
    fields: usize,
    /// The entry whose key is written and whose value is not: where its tag is and where
    /// its body starts.
    entry: Option<(usize, usize)>,
}

impl StructSerializer<'_> {
    /// An entry whose key is a string: the key and the value in one go.
    fn field<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<(), Error> {
        let entry = open(self.buf, FIELD_1);
        bytes_field(self.buf, FIELD_1, key.as_bytes());
        self.value_of(entry, value)
    }

    /// Writes the value of the entry whose body starts at `entry` and closes it.
    fn value_of<T: Serialize + ?Sized>(&mut self, entry: usize, value: &T) -> Result<(), Error> {
        let v = open(self.buf, FIELD_2);
        value.serialize(ValueSerializer { buf: &mut *self.buf })?;
        close(self.buf, v);
        close(self.buf, entry);
        Ok(())
    }

    fn finish(mut self) -> Result<(), Error> {
        // A key without a value is dropped, as `serde_json` drops it.
        if let Some((tag, _)) = self.entry.take() {
            self.buf.truncate(tag);
        }
        close(self.buf, self.fields);
        Ok(())
    }
}

impl ser::SerializeMap for StructSerializer<'_> {
    type Ok = ();
    type Error = Error;

    /// Keys follow `serde_json`'s rules: strings, chars, integers and bools become strings;
    /// anything the fast path here does not know (floats, and what is refused) is asked
    /// of `serde_json` itself, so its answer and error text are the ones given.
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        if let Some((tag, _)) = self.entry.take() {
            self.buf.truncate(tag); // a second key replaces the first, as in serde_json
        }
        let tag = self.buf.len();
        let entry = open(self.buf, FIELD_1);
        key::write(self.buf, key)?;
        self.entry = Some((tag, entry));
        Ok(())
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        let (_, entry) = self.entry.take().expect("serialize_value called before serialize_key");
        self.value_of(entry, value)
    }

    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

impl ser::SerializeStruct for StructSerializer<'_> {
    type Ok = ();
    type Error = Error;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<(), Error> {
        self.field(key, value)
    }

    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

/// The `{variant: …}` around a tuple or struct variant's body.
struct Outer {
    /// Where the body of the outer struct, its one entry and that entry's value start.
    bodies: [usize; 3],
}

impl Outer {
    fn open<'b>(buf: &'b mut Vec<u8>, variant: &str) -> (&'b mut Vec<u8>, Outer) {
        let fields = open(buf, STRUCT);
        let entry = open(buf, FIELD_1);
        bytes_field(buf, FIELD_1, variant.as_bytes());
        let value = open(buf, FIELD_2);
        (buf, Outer { bodies: [fields, entry, value] })
    }

    fn close(self, buf: &mut Vec<u8>) {
        let [fields, entry, value] = self.bodies;
        close(buf, value);
        close(buf, entry);
        close(buf, fields);
    }
}

/// A tuple or struct variant: its body, then the `{variant: …}` around it.
pub(super) struct VariantSerializer<S> {
    inner: S,
    outer: Outer,
}

impl ser::SerializeTupleVariant for VariantSerializer<ListSerializer<'_>> {
    type Ok = ();
    type Error = Error;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.inner.element(value)
    }

    fn end(self) -> Result<(), Error> {
        let ListSerializer { buf, list } = self.inner;
        close(buf, list);
        self.outer.close(buf);
        Ok(())
    }
}

impl ser::SerializeStructVariant for VariantSerializer<StructSerializer<'_>> {
    type Ok = ();
    type Error = Error;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<(), Error> {
        self.inner.field(key, value)
    }

    fn end(self) -> Result<(), Error> {
        let StructSerializer { buf, fields, .. } = self.inner;
        close(buf, fields);
        self.outer.close(buf);
        Ok(())
    }
}

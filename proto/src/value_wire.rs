//! Reading a `google.protobuf.Value` from its wire bytes without building it: the payloads
//! of the wire view ([`crate::wire`]) as the engine checks them and the Rust SDK reads them.
//!
//! Invariant: a buffer these functions accept is one prost decodes as a `Value` (known
//! fields with the right wire types, lengths inside the buffer, UTF-8 strings and keys,
//! field 0 refused), read the way prost reads it: the last `kind` wins, unknown fields
//! are skipped, an absent map key is `""` and an absent map value `null`. Nesting is
//! bounded at [`MAX_DEPTH`] `Value` levels.

/// Why wire bytes are not a `google.protobuf.Value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(&'static str);

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "payload is not a google.protobuf.Value: {}", self.0)
    }
}

impl std::error::Error for DecodeError {}

const TOO_DEEP: &str = "nested too deeply";

impl DecodeError {
    /// Whether the bytes were refused for their nesting alone.
    pub fn is_too_deep(&self) -> bool {
        self.0 == TOO_DEEP
    }
}

/// Checks that `buf` is a `google.protobuf.Value` (see the module invariant) without
/// building anything. Empty bytes are `null`.
pub fn check_value(buf: &[u8]) -> Result<(), DecodeError> {
    check(buf, 1)
}

/// As [`check_value`], nesting bounded at `max_depth` `Value` levels (at most
/// [`MAX_DEPTH`]): the check starts that much nearer the bound.
pub fn check_value_within(buf: &[u8], max_depth: u32) -> Result<(), DecodeError> {
    check(buf, MAX_DEPTH - max_depth.clamp(1, MAX_DEPTH) + 1)
}

/// `Value` messages nested deeper than this are refused (a JSON value nested 100 deep): a
/// bound on recursion. prost, counting every message level including map entries, refuses
/// beyond about 33 JSON levels, so SDKs built on it (Python, Node) refuse sooner.
pub const MAX_DEPTH: u32 = 100;

/// What one `Value` message holds, nested messages still as their bytes.
#[derive(Clone, Copy, Debug)]
pub enum WireKind<'a> {
    Null,
    Number(f64),
    String(&'a str),
    Bool(bool),
    /// A `Struct` message: read it with [`entries`].
    Struct(&'a [u8]),
    /// A `ListValue` message: read it with [`values`].
    List(&'a [u8]),
}

/// The kind of the `Value` message `buf`, nested `depth` deep (1 at the top): the last
/// `kind` field wins, unknown fields are skipped. A struct or list that a later field
/// replaces is still checked, as prost still parses it.
pub fn kind(buf: &[u8], depth: u32) -> Result<WireKind<'_>, DecodeError> {
    if depth > MAX_DEPTH {
        return Err(DecodeError(TOO_DEEP));
    }
    let mut r = Reader { buf };
    let mut out = WireKind::Null;
    while !r.buf.is_empty() {
        let key = r.varint()?;
        let next = match (key >> 3, key & 7) {
            (1, 0) => {
                r.varint()?;
                WireKind::Null
            }
            (2, 1) => WireKind::Number(f64::from_le_bytes(r.take(8)?.try_into().expect("8 bytes"))),
            (3, 2) => WireKind::String(utf8(r.delimited()?, "a string is not UTF-8")?),
            (4, 0) => WireKind::Bool(r.varint()? != 0),
            (5, 2) => WireKind::Struct(r.delimited()?),
            (6, 2) => WireKind::List(r.delimited()?),
            (1..=6, _) => return Err(DecodeError("a field has the wrong wire type")),
            _ => {
                r.skip(key)?;
                continue;
            }
        };
        if matches!(out, WireKind::Struct(_) | WireKind::List(_)) {
            check_kind(out, depth)?;
        }
        out = next;
    }
    Ok(out)
}

/// The entries of a `Struct` message body nested `depth` deep, in wire order: each key
/// and its value's bytes (to read at `depth + 1`). Within an entry the last key and the
/// last value win; an absent key is `""`, an absent value is `null` (empty bytes).
pub fn entries(buf: &[u8], depth: u32) -> Entries<'_> {
    Entries { r: Reader { buf }, depth }
}

pub struct Entries<'a> {
    r: Reader<'a>,
    depth: u32,
}

impl<'a> Iterator for Entries<'a> {
    type Item = Result<(&'a str, &'a [u8]), DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.r.buf.is_empty() {
                return None;
            }
            let entry = match self.r.varint() {
                Ok(0x0a) => self.r.delimited().and_then(|buf| entry(buf, self.depth + 1)),
                Ok(key) if key >> 3 == 1 => Err(DecodeError("an object has the wrong wire type")),
                Ok(key) => match self.r.skip(key) {
                    Ok(()) => continue,
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            };
            if entry.is_err() {
                self.r.buf = &[]; // stop after an error
            }
            return Some(entry);
        }
    }
}

/// A `Struct.fields` map entry: key (1) and value (2), either possibly absent. A value
/// that a later one replaces is still checked.
fn entry(buf: &[u8], depth: u32) -> Result<(&str, &[u8]), DecodeError> {
    let mut r = Reader { buf };
    let (mut k, mut v): (&str, Option<&[u8]>) = ("", None);
    while !r.buf.is_empty() {
        match r.varint()? {
            0x0a => k = utf8(r.delimited()?, "a key is not UTF-8")?,
            0x12 => {
                if let Some(old) = v {
                    check(old, depth)?;
                }
                v = Some(r.delimited()?);
            }
            key if matches!(key >> 3, 1 | 2) => return Err(DecodeError("an object entry has the wrong wire type")),
            key => r.skip(key)?,
        }
    }
    Ok((k, v.unwrap_or_default()))
}

/// The values of a `ListValue` message body, in order, as bytes (unknown fields skipped).
pub fn values(buf: &[u8]) -> Values<'_> {
    Values { r: Reader { buf } }
}

pub struct Values<'a> {
    r: Reader<'a>,
}

impl<'a> Iterator for Values<'a> {
    type Item = Result<&'a [u8], DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.r.buf.is_empty() {
                return None;
            }
            let value = match self.r.varint() {
                Ok(0x0a) => self.r.delimited(),
                Ok(key) if key >> 3 == 1 => Err(DecodeError("a list has the wrong wire type")),
                Ok(key) => match self.r.skip(key) {
                    Ok(()) => continue,
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            };
            if value.is_err() {
                self.r.buf = &[];
            }
            return Some(value);
        }
    }
}

fn check(buf: &[u8], depth: u32) -> Result<(), DecodeError> {
    check_kind(kind(buf, depth)?, depth)
}

/// Checks the messages nested in a kind read at `depth`.
fn check_kind(kind: WireKind<'_>, depth: u32) -> Result<(), DecodeError> {
    match kind {
        WireKind::Struct(buf) => entries(buf, depth).try_for_each(|e| check(e?.1, depth + 1)),
        WireKind::List(buf) => values(buf).try_for_each(|v| check(v?, depth + 1)),
        _ => Ok(()),
    }
}

fn utf8<'a>(bytes: &'a [u8], what: &'static str) -> Result<&'a str, DecodeError> {
    if bytes.is_ascii() {
        // SAFETY: ASCII is UTF-8. Keys and strings are mostly short ASCII, which this checks
        // a word at a time for a fraction of the full decoder's cost; the engine checks
        // every payload on the way in.
        return Ok(unsafe { std::str::from_utf8_unchecked(bytes) });
    }
    std::str::from_utf8(bytes).map_err(|_| DecodeError(what))
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn delimited(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = usize::try_from(self.varint()?).map_err(|_| DecodeError("length overflows"))?;
        self.take(len)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.buf.len() {
            return Err(DecodeError("truncated"));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    /// A varint, read byte by byte from the slice (prost's reader goes through its `Buf`
    /// trait, which costs the engine's payload check about a fifth more).
    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = self.buf.split_first().ok_or(DecodeError("truncated"))?;
            self.buf = rest;
            if shift == 63 && byte > 1 {
                break; // past 64 bits, as prost refuses it (found by fuzzing)
            }
            value |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Ok(value);
            }
        }
        Err(DecodeError("bad varint"))
    }

    /// Skips the value of a field with `key` (tag and wire type).
    fn skip(&mut self, key: u64) -> Result<(), DecodeError> {
        if key > u64::from(u32::MAX) {
            return Err(DecodeError("a key past 32 bits")); // as prost refuses it (found by fuzzing)
        }
        if key >> 3 == 0 {
            return Err(DecodeError("field 0"));
        }
        match key & 7 {
            0 => self.varint().map(drop),
            1 => self.take(8).map(drop),
            2 => self.delimited().map(drop),
            5 => self.take(4).map(drop),
            _ => Err(DecodeError("unsupported wire type")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    /// Accepted exactly when prost decodes the bytes as a `Value` (nesting aside).
    #[test]
    fn accepts_what_prost_accepts() {
        let cases: &[(&[u8], &str)] = &[
            (&[], "empty: null"),
            (&[0x08, 0x00], "null"),
            (&[0x1a, 0x02, b'h', b'i'], "string"),
            (&[0x1a, 0x03, 0xc3, 0xa9, b'!'], "non-ASCII string"),
            (&[0x2a, 0x07, 0x0a, 0x05, 0x0a, 0x01, b'k', 0x12, 0x00], "object with one entry"),
            (&[0x32, 0x04, 0x0a, 0x02, 0x20, 0x01], "list of true"),
            (&[0x38, 0x05, 0x20, 0x01], "unknown field skipped"),
            (&[0x1a, 0x05, b'a'], "truncated string"),
            (&[0x1a, 0x01, 0xff], "invalid UTF-8"),
            (&[0x18, 0x01], "a string field as a varint"),
            (&[0x22, 0x00], "a bool field as bytes"),
            (&[0x00, 0x00], "field 0"),
            (&[0x2a, 0x02, 0x08, 0x01], "an object whose entry is a varint"),
            (&[0x2a, 0x04, 0x0a, 0x02, 0x08, 0x01], "an entry whose key is a varint"),
            (&[0x32, 0x02, 0x08, 0x01], "a list whose value is a varint"),
            (&[0x0f], "wire type 7"),
            (&[0x80], "unterminated varint"),
            (&[0x80, 0x80, 0x80, 0x80, 0x10, 0x00], "a key past 32 bits"),
            (&[0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02], "a varint past 64 bits"),
        ];
        for (bytes, what) in cases {
            let prost = prost_types::Value::decode(*bytes).is_ok();
            assert_eq!(check_value(bytes).is_ok(), prost, "{what}: prost says {prost}");
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let nest = |levels: usize| {
            let mut v = vec![0x08, 0x00];
            for _ in 0..levels {
                let mut item = vec![0x0a];
                prost::encoding::encode_varint(v.len() as u64, &mut item);
                item.extend_from_slice(&v);
                let mut list = vec![0x32];
                prost::encoding::encode_varint(item.len() as u64, &mut list);
                list.extend_from_slice(&item);
                v = list;
            }
            v
        };
        assert!(check_value(&nest(MAX_DEPTH as usize - 1)).is_ok());
        assert!(check_value(&nest(MAX_DEPTH as usize)).unwrap_err().is_too_deep());
        // `levels` lists around a null are `levels + 1` Value levels
        assert!(check_value_within(&nest(4), 5).is_ok());
        assert!(check_value_within(&nest(5), 5).unwrap_err().is_too_deep());
        assert!(check_value_within(&nest(0), 1).is_ok());
        assert!(!check_value_within(&[0x1a, 0x05, b'a'], 5).unwrap_err().is_too_deep(), "truncated, not deep");
    }
}

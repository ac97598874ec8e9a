//! Serde straight to and from `google.protobuf.Value` wire bytes, with no
//! `serde_json::Value` in between.
//!
//! Invariant: these are the JSON conversions, minus the tree. The writer is the SDK's only
//! one: a `serde_json::Value` is written through it too (`crate::json::value_bytes`). For every `x: T: Serialize`,
//! [`to_wire`]`(x)` is bytes that [`decode_value`] reads as exactly
//! `serde_json::to_value(x)`, and it fails where that fails (with the same error text); for
//! every `T: DeserializeOwned` and every `bytes`, [`from_wire`]`::<T>(bytes)` is
//! `serde_json::from_value::<T>(decode_value(bytes)?)`, the same value or the same error
//! text. Numbers included: the wire carries doubles, `u64`/`i64` are written as doubles
//! (as prost writes a JSON number), and a double is read back as the
//! `serde_json::Number` that `decode_value` would build (whole and below 2^53: an integer,
//! so integer fields take `3.0`; else a float; NaN and ±inf: `null`).
//!
//! Deliberately not kept: the order of keys on the wire. `to_value` sorts an object's keys
//! (its map is a `BTreeMap`) while [`to_wire`] writes them in the order serde produces them,
//! which protobuf maps do not preserve anyway; compare decoded values, not bytes. Reading,
//! an object's entries are sorted by key and de-duplicated (the last wins) before a visitor
//! sees them, as `serde_json::Map` would have them.
//!
//! [`decode_value`]: crate::json::decode_value

mod de;
mod ser;

use crate::json::{DecodeError, check_value};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// `x` as `google.protobuf.Value` wire bytes (see the module invariant).
pub(crate) fn to_wire<T: Serialize + ?Sized>(x: &T) -> Result<Vec<u8>, serde_json::Error> {
    // Room for a small job without regrowing; the bytes are short-lived.
    let mut buf = Vec::with_capacity(256);
    x.serialize(ser::ValueSerializer { buf: &mut buf })?;
    Ok(buf)
}

/// Why wire bytes did not become a `T`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FromWireError {
    /// The bytes are not a `google.protobuf.Value` at all.
    #[error(transparent)]
    NotAValue(#[from] DecodeError),
    /// They are, but the JSON does not fit `T` (as `serde_json::from_value` says).
    #[error(transparent)]
    DoesNotFit(serde_json::Error),
}

/// `bytes`, a `google.protobuf.Value`, read into a `T` (see the module invariant). The whole
/// message is checked first, so a broken one is [`FromWireError::NotAValue`] even where `T`
/// would have ignored the broken part.
pub(crate) fn from_wire<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, FromWireError> {
    check_value(bytes)?;
    let de = de::ValueDeserializer::new(bytes, 1).map_err(FromWireError::DoesNotFit)?;
    T::deserialize(de).map_err(FromWireError::DoesNotFit)
}

#[cfg(test)]
mod tests;

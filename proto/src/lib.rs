//! The Switchyard gRPC contract, `switchyard.v1`: generated messages, clients and servers.
//!
//! The `.proto` files under `proto/switchyard/v1/` are the one source of truth; every SDK
//! is generated from (or loads) the same files.

#[allow(clippy::all, missing_docs)]
pub mod switchyard {
    pub mod v1 {
        tonic::include_proto!("switchyard.v1");
    }
}

/// The engine's and the Rust SDK's view of `switchyard.v1`: identical on the wire, but
/// JSON payloads (`google.protobuf.Value` fields) are `bytes::Bytes` holding the encoded
/// value, so they pass through the engine untouched and the SDK reads and writes them
/// straight from JSON. See `build.rs`.
#[allow(clippy::all, missing_docs)]
pub mod wire {
    // Nested like the package so the generated `super::…::google::rpc` paths resolve.
    pub use crate::google;
    pub mod switchyard {
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/wire/switchyard.v1.rs"));
        }
    }
    pub use self::switchyard::v1::*;
}

/// Wire-compatible subsets of `google.rpc` (Status, ErrorInfo), vendored in `proto/google/rpc`.
#[allow(clippy::all, missing_docs)]
pub mod google {
    pub mod rpc {
        tonic::include_proto!("google.rpc");
    }
}

pub use switchyard::v1;

pub mod value_wire;

/// Encoded `FileDescriptorSet` of `switchyard.v1` (with its google/protobuf imports),
/// served by gRPC reflection so `grpcurl` works without proto files.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/switchyard_descriptor.bin"));

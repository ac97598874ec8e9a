//! Compiles `switchyard/v1/*.proto` with protox (pure Rust, no system `protoc`) and
//! writes the encoded descriptor set next to the generated code for server reflection.
//!
//! Two Rust views of the one contract are generated:
//! - `v1`: the contract as written (clients, SDKs, tests);
//! - `wire`: the same messages and services, except that JSON payload fields typed
//!   `google.protobuf.Value` are `bytes` holding the encoded `Value`. Both are the same on
//!   the wire (a length-delimited field), so the engine serves `wire` and passes payloads
//!   through without decoding and re-encoding them, and the Rust SDK's worker stream reads
//!   payloads straight from their bytes into JSON. Reflection serves the contract as
//!   written.
use prost::Message;
use prost_types::field_descriptor_proto::Type;
use std::path::PathBuf;

/// `message.field` pairs (package switchyard.v1) whose `google.protobuf.Value` the engine
/// carries as raw bytes.
const PASSTHROUGH: &[(&str, &str)] = &[
    ("TriggerRequest", "payload"),
    ("TriggerResponse", "result"),
    ("EnqueueItem", "payload"),
    ("Invoke", "payload"),
    ("InvocationResult", "value"),
    ("DeadLetter", "payload"),
    ("JobInfo", "payload"),
    ("JobInfo", "result"),
    ("JobProgress", "detail"),
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // google/rpc is compiled so reflection can describe the ErrorInfo in error details
    // (grpcurl then prints it decoded) and so batch results can carry a Status.
    let files = [
        "switchyard/v1/engine.proto",
        "switchyard/v1/queues.proto",
        "google/rpc/status.proto",
        "google/rpc/error_details.proto",
    ];
    for f in &files {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(files, ["."])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("switchyard_descriptor.bin"), fds.encode_to_vec())?;

    let mut wire = fds.clone();
    let mut changed = 0;
    for file in wire.file.iter_mut().filter(|f| f.package() == "switchyard.v1") {
        for message in &mut file.message_type {
            let message_name = message.name().to_string();
            for field in &mut message.field {
                let name = (message_name.as_str(), field.name());
                if PASSTHROUGH.contains(&name) {
                    assert_eq!(field.type_name(), ".google.protobuf.Value", "{name:?} is a Value");
                    field.set_type(Type::Bytes);
                    field.type_name = None;
                    changed += 1;
                }
            }
        }
    }
    assert_eq!(changed, PASSTHROUGH.len(), "every passthrough field exists");
    let wire_dir = out.join("wire");
    std::fs::create_dir_all(&wire_dir)?;

    // `Engine.Connect` would clash with the generated `EngineClient::connect(dst)`
    // constructor; clients are built with `EngineClient::new(channel)` instead.
    tonic_prost_build::configure().build_client(true).build_server(true).build_transport(false).compile_fds(fds)?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .build_transport(false)
        .bytes(".switchyard.v1")
        .out_dir(&wire_dir)
        .compile_fds(wire)?;
    Ok(())
}

//! Compiles `switchyard/v1/*.proto` with protox (pure Rust, no system `protoc`) and
//! writes the encoded descriptor set next to the generated code for server reflection.
use prost::Message;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // google/rpc is compiled only so reflection can describe the ErrorInfo in error
    // details (grpcurl then prints it decoded).
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
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // `Engine.Connect` would clash with the generated `EngineClient::connect(dst)`
        // constructor; clients are built with `EngineClient::new(channel)` instead.
        .build_transport(false)
        .compile_fds(fds)?;
    Ok(())
}

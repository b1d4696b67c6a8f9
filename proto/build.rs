//! Compiles the `.proto` files with protox (pure Rust), so no system `protoc`
//! is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/relay.proto",
        "proto/e2e.proto",
        "proto/content.proto",
    ];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    let descriptors = protox::compile(files, ["proto"])?;
    // The relay's messages use `Bytes` (cheap clones of bodies it forwards).
    // The end-to-end messages keep `Vec<u8>`: they are decoded from slices
    // anyway, and secret fields (a distribution's chain key) can be zeroized.
    // Content (`hearth.content`) likewise keeps `Vec<u8>`.
    prost_build::Config::new()
        .bytes([".hearth.relay"])
        .compile_fds(descriptors)?;
    Ok(())
}

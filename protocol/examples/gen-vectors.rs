//! Writes the `Hearth_v1` test vectors to `protocol/tests/vectors/hearth_v1.json`
//! from fixed seeds, or with `--check` compares the file with what would be
//! written (exit status 1 when they differ).
//!
//! ```text
//! cargo run -p hearth-protocol --example gen-vectors [-- --check]
//! ```

#[path = "../tests/vectors/generate.rs"]
mod generate;
#[path = "../tests/vectors/schema.rs"]
mod schema;

use std::process::ExitCode;

const VECTORS_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/hearth_v1.json");

fn main() -> ExitCode {
    let check = match std::env::args().nth(1).as_deref() {
        None => false,
        Some("--check") => true,
        Some(other) => {
            eprintln!("usage: gen-vectors [--check] (unknown argument {other:?})");
            return ExitCode::from(2);
        }
    };
    let text = generate::to_json(&generate::generate());
    if check {
        let current = std::fs::read_to_string(VECTORS_PATH).unwrap_or_default();
        if current == text {
            println!("{VECTORS_PATH} is up to date");
            ExitCode::SUCCESS
        } else {
            eprintln!("{VECTORS_PATH} differs from the generated vectors");
            ExitCode::FAILURE
        }
    } else if let Err(e) = std::fs::write(VECTORS_PATH, &text) {
        eprintln!("cannot write {VECTORS_PATH}: {e}");
        ExitCode::FAILURE
    } else {
        println!("wrote {VECTORS_PATH} ({} bytes)", text.len());
        ExitCode::SUCCESS
    }
}

//! Replays a vectors-format file through the crate's public API and prints
//! `interop-decrypt: N passed, M failed` (exit status 1 on any failure).
//!
//! `protocol/interop/run.sh` feeds it the conversation that the Python
//! `doubleratchet` package produced, so our crate decrypts messages it did
//! not encrypt; the committed `tests/vectors/hearth_v1.json` replays too.
//!
//! ```text
//! cargo run -p hearth-protocol --example interop-decrypt -- FILE
//! ```

#[path = "../tests/vectors/replay.rs"]
mod replay;
#[path = "../tests/vectors/schema.rs"]
mod schema;

use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: interop-decrypt FILE");
        return ExitCode::from(2);
    };
    let vectors: schema::Vectors = match std::fs::read_to_string(&path)
        .map_err(|e| e.to_string())
        .and_then(|text| serde_json::from_str(&text).map_err(|e| e.to_string()))
    {
        Ok(vectors) => vectors,
        Err(e) => {
            eprintln!("cannot read {path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let report = replay::replay_all(&vectors);
    for failure in &report.failures {
        println!("FAIL {failure}");
    }
    println!(
        "interop-decrypt: {} passed, {} failed",
        report.passed,
        report.failures.len()
    );
    println!(
        "RESULT passed={} failed={}",
        report.passed,
        report.failures.len()
    );
    if report.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

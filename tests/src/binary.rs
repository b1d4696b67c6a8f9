//! The workspace's binaries that tests run as child processes: found beside
//! the test executable, and built first when the tests run under cargo.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

/// The path of the `hearth-relay` binary of this build profile
/// (`target/<profile>/hearth-relay`, beside the test's `deps/` folder).
///
/// Under cargo (`CARGO` is set) it first runs `cargo build -p hearth-relay
/// --bin hearth-relay` once per test process, so the binary under test is
/// never older than the library the test was compiled against.
pub fn relay_binary() -> PathBuf {
    workspace_binary("hearth-relay", "hearth-relay", None)
}

/// The path of the `hearth` CLI binary of this build profile, built first
/// like [`relay_binary`], with the SDK's test hooks (`cargo build -p
/// hearth-client --bin hearth --features test-hooks`): the crash tests set
/// `HEARTH_TEST_EXIT_BEFORE_ACK`, which a release build ignores.
pub fn hearth_binary() -> PathBuf {
    workspace_binary("hearth-client", "hearth", Some("test-hooks"))
}

/// The binary `bin` of the workspace package `package` (with `features`),
/// built (once per test process) if needed.
fn workspace_binary(package: &str, bin: &str, features: Option<&str>) -> PathBuf {
    static FOUND: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);
    // Held while building, so concurrent tests wait for one build.
    let mut found = FOUND.lock().unwrap_or_else(PoisonError::into_inner);
    let found = found.get_or_insert_with(HashMap::new);
    if let Some(path) = found.get(bin) {
        return path.clone();
    }
    let path = find_or_build_binary(package, bin, features);
    found.insert(bin.to_owned(), path.clone());
    path
}

fn find_or_build_binary(package: &str, bin: &str, features: Option<&str>) -> PathBuf {
    let exe = std::env::current_exe()
        .unwrap_or_else(|e| panic!("locating the test executable failed: {e}"));
    // target/<profile>/deps/<test>-<hash>
    let profile_dir = exe.parent().and_then(Path::parent).unwrap_or_else(|| {
        panic!(
            "the test executable {} is not in target/<profile>/deps",
            exe.display()
        )
    });
    let binary = profile_dir.join(format!("{bin}{}", std::env::consts::EXE_SUFFIX));
    if std::env::var_os("CARGO").is_some() || !binary.exists() {
        build_binary(profile_dir, package, bin, features);
    }
    assert!(
        binary.exists(),
        "the binary {} is missing; build it with `{}`",
        binary.display(),
        build_command_line(package, bin, features)
    );
    binary
}

fn build_binary(profile_dir: &Path, package: &str, bin: &str, features: Option<&str>) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev".to_owned(),
        Some(name) => name.to_owned(),
    };
    let mut command = std::process::Command::new(cargo);
    command.args([
        "build",
        "--quiet",
        "-p",
        package,
        "--bin",
        bin,
        "--profile",
        &profile,
    ]);
    if let Some(features) = features {
        command.arg("--features").arg(features);
    }
    if let Some(target_dir) = profile_dir.parent() {
        command.arg("--target-dir").arg(target_dir);
    }
    match command.status() {
        Ok(status) if status.success() => {}
        Ok(status) => panic!(
            "`{}` failed ({status})",
            build_command_line(package, bin, features)
        ),
        Err(error) => panic!("running cargo to build {bin} failed: {error}"),
    }
}

/// The command that builds `bin`, as a person would type it.
fn build_command_line(package: &str, bin: &str, features: Option<&str>) -> String {
    let features = features.map_or(String::new(), |f| format!(" --features {f}"));
    format!("cargo build -p {package} --bin {bin}{features}")
}

//! Release builds carry no test hooks: no package of the workspace turns a
//! `test-hooks` feature on except through `[dev-dependencies]` (which a
//! `cargo build` or `cargo install` never activates). `.ci/run` checks the
//! release `hearth` binary itself; this test catches the manifest change
//! that would put the hooks there, without building anything.

use std::process::Command;

use serde_json::Value;

const FEATURE: &str = "test-hooks";

/// `cargo metadata` of the workspace (no dependency resolution).
fn workspace_metadata() -> Value {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml");
    let output = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .arg("--manifest-path")
        .arg(manifest)
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("cargo metadata prints JSON")
}

fn packages(metadata: &Value) -> &[Value] {
    metadata["packages"].as_array().expect("a package list")
}

fn name(package: &Value) -> &str {
    package["name"].as_str().expect("a package name")
}

/// Whether a feature list entry (`"test-hooks"` or `"crate/test-hooks"`)
/// turns the test hooks on.
fn is_hook(entry: &str) -> bool {
    entry == FEATURE || entry.rsplit_once('/').is_some_and(|(_, f)| f == FEATURE)
}

/// `(package, dependency, kind)` for every dependency that enables the
/// hooks; `kind` is `"normal"`, `"build"` or `"dev"`.
fn hook_dependencies(metadata: &Value) -> Vec<(String, String, String)> {
    let mut found = Vec::new();
    for package in packages(metadata) {
        for dependency in package["dependencies"].as_array().into_iter().flatten() {
            let features = dependency["features"].as_array().into_iter().flatten();
            if features.filter_map(Value::as_str).any(is_hook) {
                found.push((
                    name(package).to_owned(),
                    dependency["name"].as_str().unwrap_or("?").to_owned(),
                    dependency["kind"].as_str().unwrap_or("normal").to_owned(),
                ));
            }
        }
    }
    found
}

/// The features `default` turns on in `package`, transitively.
fn default_features(package: &Value) -> Vec<String> {
    let table = &package["features"];
    let mut on = vec!["default".to_owned()];
    let mut next = 0;
    while let Some(feature) = on.get(next).cloned() {
        next += 1;
        for entry in table[feature.as_str()].as_array().into_iter().flatten() {
            let entry = entry.as_str().unwrap_or_default().to_owned();
            if !on.contains(&entry) {
                on.push(entry);
            }
        }
    }
    on
}

#[test]
fn only_dev_dependencies_turn_the_test_hooks_on() {
    let metadata = workspace_metadata();
    let found = hook_dependencies(&metadata);
    // The check sees the hooks where they are meant to be, so it is not
    // passing because it reads nothing.
    for (package, dependency) in [
        ("hearth-client", "hearth-client"),
        ("hearth-protocol", "hearth-protocol"),
        ("hearth-tests", "hearth-client"),
    ] {
        assert!(
            found
                .iter()
                .any(|(p, d, kind)| p == package && d == dependency && kind == "dev"),
            "{package} should enable {dependency}'s test hooks as a dev-dependency: {found:?}"
        );
    }
    let in_release: Vec<_> = found.iter().filter(|(_, _, kind)| kind != "dev").collect();
    assert!(
        in_release.is_empty(),
        "these dependencies turn test hooks on in every build, release included \
         (move them to [dev-dependencies]): {in_release:?}"
    );
}

#[test]
fn no_package_has_the_test_hooks_by_default() {
    let metadata = workspace_metadata();
    let with_hooks: Vec<&str> = packages(&metadata)
        .iter()
        .filter(|package| !package["features"][FEATURE].is_null())
        .map(name)
        .collect();
    for crate_with_hooks in ["hearth-client", "hearth-protocol", "hearth-relay"] {
        assert!(
            with_hooks.contains(&crate_with_hooks),
            "{crate_with_hooks} should declare the `{FEATURE}` feature: {with_hooks:?}"
        );
    }
    for package in packages(&metadata) {
        let defaults = default_features(package);
        assert!(
            !defaults.iter().any(|f| is_hook(f)),
            "{}'s default features turn test hooks on: {defaults:?}",
            name(package)
        );
    }
}

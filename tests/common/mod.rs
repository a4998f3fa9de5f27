//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// `../shared/testdata` beside the checkout (found from `CARGO_MANIFEST_DIR`).
///
/// When it is missing: `None` with a loud message on a developer's machine, so the test
/// can skip; a panic when the environment variable `CI` is set, because CI must run it.
pub fn testdata_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("shared")
        .join("testdata");
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "CI is set but {} is missing: the shared test data must sit beside the checkout",
            dir.display()
        );
    }
    eprintln!(
        "\n*** SKIPPED: {} not found; these tests need ../shared beside the checkout ***\n",
        dir.display()
    );
    None
}

/// Reads a test data file as text, split into lines on `\n` only (some lines hold raw
/// U+2028/U+2029/U+0085, which `str::lines` would not split on, but other splitters do).
pub fn testdata_lines(name: &str) -> Option<Vec<String>> {
    let dir = testdata_dir()?;
    let path = dir.join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    Some(
        text.split('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l).to_owned())
            .filter(|l| !l.trim().is_empty())
            .collect(),
    )
}

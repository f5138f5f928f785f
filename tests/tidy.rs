//! House rules no compiler checks: no skipped tests and no expected panics. A test that is
//! skipped checks nothing; a panic is never the right answer to bad input.

use std::path::{Path, PathBuf};

const FORBIDDEN: &[(&str, &str)] = &[
    (
        "#[ignore",
        "a skipped test checks nothing: fix it or delete it",
    ),
    (
        "#[should_panic",
        "bad input gets a typed error, never a panic: assert on the error",
    ),
    (
        "```ignore",
        "doc examples compile: use `no_run` or a `text` block",
    ),
    (
        "```rust,ignore",
        "doc examples compile: use `no_run` or a `text` block",
    ),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if path.is_dir() {
            if name != "target" && name != ".git" {
                rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_skipped_tests_and_no_expected_panics() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["src", "crates", "tests", "plugins"] {
        rust_files(&root.join(dir), &mut files);
    }
    assert!(
        files.len() > 50,
        "the scan found only {} files",
        files.len()
    );
    let this_file = Path::new(file!());
    let mut found = Vec::new();
    for file in &files {
        if file.ends_with(this_file) {
            continue;
        }
        let text = std::fs::read_to_string(file).expect("read a source file");
        for (line_no, line) in text.lines().enumerate() {
            for (pattern, why) in FORBIDDEN {
                if line.contains(pattern) {
                    found.push(format!(
                        "{}:{}: `{pattern}`: {why}",
                        file.display(),
                        line_no + 1
                    ));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "house rules broken:\n{}",
        found.join("\n")
    );
}

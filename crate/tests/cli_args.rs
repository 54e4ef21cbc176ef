//! Command-line errors of the `effyolo` binary: each must end the process with a non-zero
//! status (2 for a bad command line, 1 for files that cannot be used) and exactly one line
//! `error: ...` on standard error, before any model is needed.

#![cfg(feature = "cli")]

use std::process::{Command, Output};

/// A file that exists but is neither an image nor a weight file.
const NOT_AN_IMAGE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
const MISSING: &str = "no-such-dir/missing.safetensors";

fn effyolo(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_effyolo"))
        .args(args)
        .output()
        .expect("the effyolo binary starts")
}

/// Asserts exit status `code`, nothing on stdout, and one stderr line `error: ...`
/// containing `needle`.
fn assert_error(args: &[&str], code: i32, needle: &str) {
    let out = effyolo(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
    assert!(out.stdout.is_empty(), "{args:?} printed to stdout");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{args:?}: {stderr}");
    assert!(lines[0].starts_with("error: "), "{args:?}: {stderr}");
    assert!(
        lines[0].contains(needle),
        "{args:?}: '{needle}' not in {stderr}"
    );
}

#[test]
fn missing_or_unknown_command() {
    assert_error(&[], 2, "missing command");
    assert_error(&["train", "x"], 2, "unknown command 'train'");
}

#[test]
fn unknown_flag() {
    assert_error(
        &["detect", "--weights", "w.safetensors", "--bogus", "a.jpg"],
        2,
        "'--bogus'",
    );
    assert_error(
        &["detect", "--weights", "w.safetensors", "-q", "a.jpg"],
        2,
        "'-q'",
    );
    assert_error(&["info", "w.safetensors", "--conf", "0.5"], 2, "'--conf'");
}

#[test]
fn missing_weights_or_images() {
    assert_error(&["detect", "a.jpg"], 2, "--weights");
    assert_error(&["detect", "--weights", "w.safetensors"], 2, "IMAGE");
    assert_error(
        &["detect", "a.jpg", "--weights"],
        2,
        "--weights needs a value",
    );
    assert_error(&["info"], 2, "weight FILE");
    assert_error(
        &["info", "a.safetensors", "b.safetensors"],
        2,
        "unexpected argument",
    );
}

#[test]
fn bad_sizes() {
    for size in ["100", "0", "axb", "320x", "320x100", "-32", ""] {
        assert_error(
            &["detect", "--weights", "w", "--size", size, "a.jpg"],
            2,
            "--size",
        );
        assert_error(
            &["info", "w", &format!("--size={size}")],
            2,
            "multiples of 32",
        );
    }
}

#[test]
fn bad_thresholds_and_limits() {
    for (flag, value, needle) in [
        ("--conf", "1.5", "between 0 and 1"),
        ("--conf", "abc", "between 0 and 1"),
        ("--iou", "-0.1", "between 0 and 1"),
        ("--iou", "nan", "between 0 and 1"),
        ("--max-det", "0", "at least 1"),
        ("--max-det", "many", "at least 1"),
    ] {
        assert_error(
            &["detect", "--weights", "w", flag, value, "a.jpg"],
            2,
            needle,
        );
    }
    assert_error(
        &[
            "detect",
            "--weights",
            "w",
            "--conf",
            "0.3",
            "--conf",
            "0.4",
            "a",
        ],
        2,
        "more than once",
    );
}

#[test]
fn missing_image_file() {
    // Reported before the weights are even read.
    assert_error(
        &["detect", "--weights", MISSING, "no-such-image.png"],
        1,
        "no-such-image.png",
    );
    assert_error(
        &["detect", "--weights", MISSING, NOT_AN_IMAGE, "gone.jpg"],
        1,
        "gone.jpg",
    );
    assert_error(&["detect", "--weights", MISSING, "."], 1, "not a file");
}

#[test]
fn unreadable_weights() {
    assert_error(
        &["detect", "--weights", MISSING, NOT_AN_IMAGE],
        1,
        "missing.safetensors",
    );
    assert_error(&["info", MISSING], 1, "missing.safetensors");
    // Exists but is no weight file: whatever the loader says, on one line.
    assert_error(&["info", NOT_AN_IMAGE], 1, "Cargo.toml");
    assert_error(
        &["detect", "--weights", NOT_AN_IMAGE, NOT_AN_IMAGE],
        1,
        "Cargo.toml",
    );
}

#[test]
fn help_goes_to_stdout() {
    for args in [&["--help"][..], &["detect", "--help"], &["info", "-h"]] {
        let out = effyolo(args);
        assert!(out.status.success(), "{args:?}");
        assert!(out.stderr.is_empty());
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("effyolo detect --weights FILE"), "{text}");
        assert!(text.contains("Exit status"), "{text}");
    }
}

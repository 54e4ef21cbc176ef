//! Bad weight files and bad inputs: each gives a one-line error that names the problem, the CLI
//! exits non-zero, and nothing panics.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::TempDir;

use effyolo::model::weights::{write_safetensors, StorageType};
use effyolo::model::{DetectOptions, Detector, ModelConfig};

/// A small but complete network (every block kind, one MHSA block, two classes).
fn tiny_config() -> ModelConfig {
    ModelConfig {
        widths: [8, 16, 32, 64],
        depths: [1, 1, 1, 2],
        mhsa_blocks: 1,
        class_names: vec!["person".into(), "cup".into()],
        train_size: (64, 64),
        ..ModelConfig::variant("l1").unwrap()
    }
}

type Tensors = Vec<(String, Vec<usize>, Vec<f32>)>;

fn tiny_tensors() -> Tensors {
    Detector::synthetic_tensors(&tiny_config()).unwrap()
}

fn file_bytes(tensors: &Tensors) -> Vec<u8> {
    write_safetensors(tensors, &tiny_config(), StorageType::F32).unwrap()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// A 40x30 PNG to detect on.
fn test_image(dir: &Path) -> PathBuf {
    let img = image::RgbImage::from_fn(40, 30, |x, y| {
        image::Rgb([(x * 6) as u8, (y * 8) as u8, 128])
    });
    let p = dir.join("small.png");
    img.save(&p).unwrap();
    p
}

/// Runs `effyolo detect` and returns (exit code, stderr).
fn cli_detect(weights: &Path, image: &Path, extra: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_effyolo"))
        .arg("detect")
        .arg("--weights")
        .arg(weights)
        .args(extra)
        .arg(image)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The library error names `expect`, and the CLI fails with one line saying the same.
fn assert_rejected(test: &str, bytes: &[u8], expect: &[&str]) {
    let err = Detector::from_safetensors(bytes)
        .err()
        .expect("must be rejected")
        .to_string();
    for e in expect {
        assert!(err.contains(e), "{test}: error '{err}' lacks '{e}'");
    }
    assert!(!err.contains('\n'), "{test}: multi-line error '{err}'");
    let dir = TempDir::new(test);
    let w = write(&dir, "w.safetensors", bytes);
    let (code, stderr) = cli_detect(&w, &test_image(&dir), &[]);
    assert_ne!(code, 0, "{test}: CLI exit code");
    assert!(
        !stderr.contains("panicked"),
        "{test}: CLI panicked: {stderr}"
    );
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "{test}: stderr is not one line: {stderr}"
    );
    for e in expect {
        assert!(
            stderr.contains(e),
            "{test}: CLI stderr '{stderr}' lacks '{e}'"
        );
    }
}

#[test]
fn valid_tiny_file_loads_and_detects() {
    let det = Detector::from_safetensors(&file_bytes(&tiny_tensors())).unwrap();
    let rgb = vec![100u8; 3 * 40 * 30];
    det.detect(&rgb, 40, 30, (64, 96), &DetectOptions::default())
        .unwrap();
    let dir = TempDir::new("valid");
    let w = write(&dir, "w.safetensors", &file_bytes(&tiny_tensors()));
    let (code, stderr) = cli_detect(&w, &test_image(&dir), &["--size", "64"]);
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn truncated_file() {
    let bytes = file_bytes(&tiny_tensors());
    assert_rejected("truncated", &bytes[..bytes.len() * 2 / 3], &["truncated"]);
    assert_rejected("truncated-header", &bytes[..5], &["truncated"]);
}

#[test]
fn not_a_safetensors_file() {
    let dir = TempDir::new("foreign");
    let png = std::fs::read(test_image(&dir)).unwrap();
    assert_rejected("png", &png, &["not a safetensors file"]);
    assert_rejected(
        "text",
        b"this is a text file, not weights\n",
        &["not a safetensors file"],
    );
}

#[test]
fn missing_key() {
    let mut t = tiny_tensors();
    t.retain(|(n, _, _)| n != "neck.td4.cv3.bn.running_var");
    assert_rejected(
        "missing",
        &file_bytes(&t),
        &["missing", "neck.td4.cv3.bn.running_var"],
    );
}

#[test]
fn unused_key() {
    let mut t = tiny_tensors();
    t.push(("backbone.extra.weight".into(), vec![2], vec![0.0, 1.0]));
    assert_rejected(
        "unused",
        &file_bytes(&t),
        &["unused", "backbone.extra.weight"],
    );
}

#[test]
fn wrong_shape() {
    let mut t = tiny_tensors();
    let e = t
        .iter_mut()
        .find(|(n, _, _)| n == "head.m.1.weight")
        .unwrap();
    e.1 = vec![e.1[0], e.1[1] / 2, 2, 1];
    assert_rejected("shape", &file_bytes(&t), &["mis-shaped", "head.m.1.weight"]);
}

#[test]
fn wrong_dtype() {
    let t = tiny_tensors();
    // Write the file by hand so one tensor can carry a dtype the loader does not read.
    let bufs: Vec<(String, Vec<usize>, Vec<u8>, safetensors::Dtype)> = t
        .iter()
        .map(|(n, s, v)| {
            if n == "backbone.stem.conv1.bias" {
                (
                    n.clone(),
                    s.clone(),
                    v.iter().flat_map(|x| (*x as i32).to_le_bytes()).collect(),
                    safetensors::Dtype::I32,
                )
            } else {
                (
                    n.clone(),
                    s.clone(),
                    v.iter().flat_map(|x| x.to_le_bytes()).collect(),
                    safetensors::Dtype::F32,
                )
            }
        })
        .collect();
    let views: Vec<_> = bufs
        .iter()
        .map(|(n, s, b, d)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap(),
            )
        })
        .collect();
    let bytes = safetensors::serialize(views, &Some(tiny_config().to_metadata())).unwrap();
    assert_rejected(
        "dtype",
        &bytes,
        &["dtype", "backbone.stem.conv1.bias", "I32"],
    );
}

#[test]
fn nan_weights() {
    let mut t = tiny_tensors();
    t.iter_mut()
        .find(|(n, _, _)| n == "neck.lat4.conv.weight")
        .unwrap()
        .2[3] = f32::NAN;
    assert_rejected("nan", &file_bytes(&t), &["NaN", "neck.lat4.conv.weight"]);
}

#[test]
fn f16_file_loads() {
    let bytes = write_safetensors(&tiny_tensors(), &tiny_config(), StorageType::F16).unwrap();
    Detector::from_safetensors(&bytes).unwrap();
}

#[test]
fn unsupported_input_size() {
    let det = Detector::from_safetensors(&file_bytes(&tiny_tensors())).unwrap();
    let rgb = vec![0u8; 3 * 40 * 30];
    for size in [(100, 100), (0, 64), (64, 48)] {
        let err = det
            .detect(&rgb, 40, 30, size, &DetectOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("multiple of 32") || err.contains("multiples of 32"),
            "{err}"
        );
    }
    let dir = TempDir::new("size");
    let w = write(&dir, "w.safetensors", &file_bytes(&tiny_tensors()));
    let (code, stderr) = cli_detect(&w, &test_image(&dir), &["--size", "100"]);
    assert_ne!(code, 0);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("32"), "{stderr}");
}

#[test]
fn zero_size_and_short_buffers() {
    let det = Detector::from_safetensors(&file_bytes(&tiny_tensors())).unwrap();
    let o = DetectOptions::default();
    assert!(det.detect(&[], 0, 0, (64, 64), &o).is_err());
    assert!(det.detect(&[0; 10], 40, 30, (64, 64), &o).is_err());
    let bad = DetectOptions {
        conf_threshold: f32::NAN,
        ..o
    };
    assert!(det
        .detect(&[0; 3 * 40 * 30], 40, 30, (64, 64), &bad)
        .is_err());
}

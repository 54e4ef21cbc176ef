//! The CLI against the reference pipeline on a real COCO image (`../shared/data/coco-dev`, or
//! the folder named by `EFFYOLO_DATA`).
//!
//! The weights are the reference's synthetic L1 detector (full width, 80 classes): the test
//! regenerates them, checks their digest against the one the reference recorded when it
//! exported them, writes them to a safetensors file and runs `effyolo detect` on the image the
//! reference ran `pipeline.detect` on (same letterbox, 320x320, thresholds from the fixture).
//! Every detection must match one of the other side: same class, IoU >= 0.99, score within 1e-3.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{config_of, fixture, synthetic_weights, TempDir};
use effyolo::model::weights::{write_safetensors, StorageType};
use serde_json::Value;

fn data_dir() -> PathBuf {
    match std::env::var_os("EFFYOLO_DATA") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"),
    }
}

fn iou(a: [f64; 4], b: [f64; 4]) -> f64 {
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = iw * ih;
    inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)
}

fn boxes(dets: &Value) -> Vec<([f64; 4], f64, u64)> {
    dets.as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let g = |k: &str| d[k].as_f64().unwrap();
            (
                [g("x1"), g("y1"), g("x2"), g("y2")],
                g("score"),
                d["class_id"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn assert_covered(what: &str, from: &[([f64; 4], f64, u64)], by: &[([f64; 4], f64, u64)]) {
    for (b, s, c) in from {
        let ok = by
            .iter()
            .any(|(b2, s2, c2)| c == c2 && iou(*b, *b2) >= 0.99 && (s - s2).abs() <= 1e-3);
        assert!(ok, "{what}: no match for class {c} score {s} box {b:?}");
    }
}

#[test]
fn cli_detections_match_reference_pipeline() {
    let doc = fixture("l1");
    let config = config_of(&doc);
    let (tensors, digest) = synthetic_weights(&config);
    assert_eq!(
        digest,
        doc["weights_sha256"].as_str().unwrap(),
        "weights differ from the reference export"
    );

    let dir = TempDir::new("cli-ref");
    let weights = dir.join("l1-synthetic.safetensors");
    std::fs::write(
        &weights,
        write_safetensors(&tensors, &config, StorageType::F32).unwrap(),
    )
    .unwrap();

    let case = &doc["image_case"];
    let image = data_dir()
        .join("coco-dev/images")
        .join(case["image"].as_str().unwrap());
    assert!(
        image.exists(),
        "{} is missing: set EFFYOLO_DATA to the shared data folder",
        image.display()
    );
    let out = Command::new(env!("CARGO_BIN_EXE_effyolo"))
        .args(["detect", "--weights"])
        .arg(&weights)
        .args(["--size", "320", "--iou", "0.45", "--conf"])
        .arg(case["conf"].as_f64().unwrap().to_string())
        .arg(&image)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(line["width"], case["width"]);
    assert_eq!(line["height"], case["height"]);

    let got = boxes(&line["detections"]);
    let want = boxes(&case["detections"]);
    assert!(!want.is_empty());
    assert_eq!(got.len(), want.len(), "detection count");
    assert_covered("reference", &want, &got);
    assert_covered("cli", &got, &want);
}

//! Helpers shared by the integration tests: reference fixtures and scratch folders.

// Each test crate includes this module and uses only part of it.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use effyolo::model::{Detector, ModelConfig};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// `tests/fixtures/<name>.json`, as written by `weights/make_fixtures.py`.
pub fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

/// The model configuration a fixture was generated with.
pub fn config_of(doc: &Value) -> ModelConfig {
    let md: HashMap<String, String> = serde_json::from_value(doc["metadata"].clone()).unwrap();
    ModelConfig::from_metadata(&md).unwrap()
}

/// The synthetic weights of `config`, sorted by name, and their sha256 over (name, f32 LE
/// values): the digest the reference records when it exports the same weights.
pub fn synthetic_weights(config: &ModelConfig) -> (Vec<(String, Vec<usize>, Vec<f32>)>, String) {
    let mut tensors = Detector::synthetic_tensors(config).unwrap();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let mut h = Sha256::new();
    for (name, _, values) in &tensors {
        h.update(name.as_bytes());
        values.iter().for_each(|v| h.update(v.to_le_bytes()));
    }
    let digest = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    (tensors, digest)
}

/// A scratch folder in the system's temp folder, removed with everything in it when the
/// test ends (passed or failed).
pub struct TempDir(PathBuf);

impl TempDir {
    /// `effyolo-test-<pid>-<name>`, created if missing.
    pub fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("effyolo-test-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl std::ops::Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

//! Model configuration, read from (and written to) the safetensors `__metadata__`.
//!
//! The weight file is self-describing: widths, depths, MHSA block count, neck multiples,
//! trained input size (which fixes the stored attention-bias grid), class names, anchors and
//! input normalisation all travel with the tensors. Format version 1; every value is a string,
//! JSON where structured (as the PyTorch reference writes them).

use std::collections::HashMap;

use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

pub const FORMAT_NAME: &str = "effyolo";
pub const FORMAT_VERSION: &str = "1";

/// Attention shape of every Meta3D block, fixed by EfficientFormer whatever the width.
pub const NUM_HEADS: usize = 8;
pub const KEY_DIM: usize = 32;
pub const VAL_DIM: usize = 128;

pub const BACKBONE_BN_EPS: f32 = 1e-5;
pub const NECK_BN_EPS: f32 = 1e-3;
pub const LAYER_NORM_EPS: f32 = 1e-5;
pub const GROUP_NORM_EPS: f32 = 1e-5;
pub const STRIDES: [usize; 3] = [8, 16, 32];

pub const DEFAULT_ANCHORS: [[[f32; 2]; 3]; 3] = [
    [[10.0, 13.0], [16.0, 30.0], [33.0, 23.0]],
    [[30.0, 61.0], [62.0, 45.0], [59.0, 119.0]],
    [[116.0, 90.0], [156.0, 198.0], [373.0, 326.0]],
];

#[derive(Clone, Debug, PartialEq)]
pub struct ModelConfig {
    /// A label ("l1", "l3", "l7"); `widths` and `depths` are what the network is built from.
    pub variant: String,
    pub widths: [usize; 4],
    pub depths: [usize; 4],
    /// How many of stage 4's last blocks are Meta3D (MHSA); 0 = pooling only.
    pub mhsa_blocks: usize,
    pub width_multiple: f32,
    pub depth_multiple: f32,
    /// (height, width) the checkpoint was trained at: its attention-bias table covers this / 32.
    pub train_size: (usize, usize),
    pub class_names: Vec<String>,
    pub anchors: [[[f32; 2]; 3]; 3],
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl ModelConfig {
    /// The published EfficientFormer shapes for "l1", "l3", "l7" with a yolov5n-width neck,
    /// 80 classes, trained at 320x320, no input normalisation.
    pub fn variant(name: &str) -> Result<Self> {
        let (widths, depths, mhsa_blocks) = match name {
            "l1" => ([48, 96, 224, 448], [3, 2, 6, 4], 1),
            "l3" => ([64, 128, 320, 512], [4, 4, 12, 6], 4),
            "l7" => ([96, 192, 384, 768], [6, 6, 18, 8], 8),
            other => {
                return Err(Error::InvalidInput(format!(
                    "unknown variant '{other}' (expected l1, l3 or l7)"
                )))
            }
        };
        Ok(ModelConfig {
            variant: name.to_string(),
            widths,
            depths,
            mhsa_blocks,
            width_multiple: 0.25,
            depth_multiple: 0.33,
            train_size: (320, 320),
            class_names: (0..80).map(|i| format!("class{i}")).collect(),
            anchors: DEFAULT_ANCHORS,
            mean: [0.0; 3],
            std: [1.0; 3],
        })
    }

    pub fn num_classes(&self) -> usize {
        self.class_names.len()
    }

    /// Grid of the stored attention-bias table.
    pub fn train_grid(&self) -> (usize, usize) {
        (self.train_size.0 / 32, self.train_size.1 / 32)
    }

    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::WeightFormat(m));
        if self.widths.contains(&0) || self.depths.contains(&0) {
            return bad(format!(
                "widths {:?} and depths {:?} must be positive",
                self.widths, self.depths
            ));
        }
        if self.mhsa_blocks > self.depths[3] {
            return bad(format!(
                "mhsa_blocks {} exceeds the stage-4 depth {}",
                self.mhsa_blocks, self.depths[3]
            ));
        }
        // Written so that NaN is out of range.
        let in_range = |x: f32| x > 0.0 && x <= 4.0;
        if !in_range(self.width_multiple) || !in_range(self.depth_multiple) {
            return bad(format!(
                "width/depth multiples {} / {} out of range (0, 4]",
                self.width_multiple, self.depth_multiple
            ));
        }
        let (h, w) = self.train_size;
        if h == 0 || w == 0 || h % 32 != 0 || w % 32 != 0 {
            return bad(format!(
                "train_size {h}x{w} must be positive multiples of 32"
            ));
        }
        if self.class_names.is_empty() {
            return bad("class_names is empty".into());
        }
        if self
            .anchors
            .iter()
            .flatten()
            .flatten()
            .any(|a| !(a.is_finite() && *a > 0.0))
        {
            return bad("anchors must be positive and finite".into());
        }
        if self.std.iter().any(|s| !(s.is_finite() && *s > 0.0))
            || self.mean.iter().any(|m| !m.is_finite())
        {
            return bad("mean/std must be finite with std > 0".into());
        }
        Ok(())
    }

    /// Neck width of a nominal yolov5s channel count (rounded up to a multiple of 8).
    pub fn neck_width(&self, channels: usize) -> usize {
        let x = channels as f64 * self.width_multiple as f64;
        ((x / 8.0).ceil() as usize) * 8
    }

    /// Bottlenecks per C3 (YOLOv5: max(round(3 * depth_multiple), 1)).
    pub fn c3_depth(&self) -> usize {
        ((3.0 * self.depth_multiple as f64).round() as usize).max(1)
    }

    pub fn from_metadata(md: &HashMap<String, String>) -> Result<Self> {
        let get = |key: &str| {
            md.get(key)
                .ok_or_else(|| Error::WeightFormat(format!("metadata lacks '{key}'")))
        };
        fn json<T: DeserializeOwned>(key: &str, v: &str) -> Result<T> {
            serde_json::from_str(v)
                .map_err(|e| Error::WeightFormat(format!("metadata '{key}' is malformed: {e}")))
        }
        let format = md.get("format").map(String::as_str).unwrap_or("");
        if format != FORMAT_NAME {
            return Err(Error::WeightFormat(format!(
                "not an effyolo weight file (metadata format is '{format}', expected '{FORMAT_NAME}')"
            )));
        }
        let version = get("format_version")?;
        if version != FORMAT_VERSION {
            return Err(Error::WeightFormat(format!(
                "format_version {version} is not supported (this build reads {FORMAT_VERSION})"
            )));
        }
        let train: [usize; 2] = json("train_size", get("train_size")?)?;
        let cfg = ModelConfig {
            variant: get("variant")?.clone(),
            widths: json("widths", get("widths")?)?,
            depths: json("depths", get("depths")?)?,
            mhsa_blocks: json("mhsa_blocks", get("mhsa_blocks")?)?,
            width_multiple: json("width_multiple", get("width_multiple")?)?,
            depth_multiple: json("depth_multiple", get("depth_multiple")?)?,
            train_size: (train[0], train[1]),
            class_names: json("class_names", get("class_names")?)?,
            anchors: json("anchors", get("anchors")?)?,
            mean: json("mean", get("mean")?)?,
            std: json("std", get("std")?)?,
        };
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn to_metadata(&self) -> HashMap<String, String> {
        let j = |v: serde_json::Value| v.to_string();
        let mut md = HashMap::new();
        md.insert("format".into(), FORMAT_NAME.into());
        md.insert("format_version".into(), FORMAT_VERSION.into());
        md.insert("variant".into(), self.variant.clone());
        md.insert("widths".into(), j(serde_json::json!(self.widths)));
        md.insert("depths".into(), j(serde_json::json!(self.depths)));
        md.insert("mhsa_blocks".into(), self.mhsa_blocks.to_string());
        md.insert(
            "width_multiple".into(),
            j(serde_json::json!(self.width_multiple)),
        );
        md.insert(
            "depth_multiple".into(),
            j(serde_json::json!(self.depth_multiple)),
        );
        md.insert(
            "train_size".into(),
            j(serde_json::json!([self.train_size.0, self.train_size.1])),
        );
        md.insert("class_names".into(), j(serde_json::json!(self.class_names)));
        md.insert("anchors".into(), j(serde_json::json!(self.anchors)));
        md.insert("mean".into(), j(serde_json::json!(self.mean)));
        md.insert("std".into(), j(serde_json::json!(self.std)));
        md
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_round_trip() {
        let cfg = ModelConfig::variant("l3").unwrap();
        assert_eq!(ModelConfig::from_metadata(&cfg.to_metadata()).unwrap(), cfg);
    }

    #[test]
    fn neck_widths_follow_yolov5_rounding() {
        let cfg = ModelConfig::variant("l1").unwrap();
        assert_eq!(
            [
                cfg.neck_width(256),
                cfg.neck_width(512),
                cfg.neck_width(1024)
            ],
            [64, 128, 256]
        );
        assert_eq!(cfg.c3_depth(), 1);
    }

    #[test]
    fn rejects_foreign_and_bad_metadata() {
        let mut md = ModelConfig::variant("l1").unwrap().to_metadata();
        md.insert("mhsa_blocks".into(), "9".into());
        assert!(ModelConfig::from_metadata(&md)
            .unwrap_err()
            .to_string()
            .contains("mhsa_blocks"));
        md.insert("format".into(), "other".into());
        assert!(ModelConfig::from_metadata(&md)
            .unwrap_err()
            .to_string()
            .contains("not an effyolo"));
    }
}

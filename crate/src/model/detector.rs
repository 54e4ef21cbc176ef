//! The public entry point: a loaded detector that turns RGB pixels into boxes. The CLI, the
//! wasm bindings and the tests all go through this one type.

use crate::error::{Error, Result};
use crate::kernels::parallel::on_pool;
use crate::kernels::Parallelism;
use crate::model::config::{ModelConfig, STRIDES};
use crate::model::efficientformer::{is_sub_step, Backbone, Observer, Trace};
use crate::model::postprocess::{decode_and_nms, DetectOptions, Detection};
use crate::model::preprocess::{letterbox, validate_input_size};
use crate::model::synthetic;
use crate::model::weights::{Loader, SafetensorsSource, TensorSource};
use crate::model::yolo::{Detect, Neck};
use crate::tensor::Tensor;

/// Multiply-accumulate counts of one forward pass, by part.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MacCount {
    pub backbone: u64,
    pub neck: u64,
    pub head: u64,
}

impl MacCount {
    pub fn total(&self) -> u64 {
        self.backbone + self.neck + self.head
    }
}

pub struct Detector {
    config: ModelConfig,
    backbone: Backbone,
    neck: Neck,
    head: Detect,
    parameter_count: usize,
    parallelism: Parallelism,
}

impl Detector {
    /// Loads and validates a safetensors weight file: every key, shape and dtype is checked and
    /// all problems are reported together.
    pub fn from_safetensors(bytes: &[u8]) -> Result<Self> {
        let (source, config) = SafetensorsSource::parse(bytes)?;
        let parameter_count = source
            .names()
            .iter()
            .filter(|n| !n.ends_with("running_mean") && !n.ends_with("running_var"))
            .filter_map(|n| source.shape(n).map(|shape| shape.iter().product::<usize>()))
            .sum();
        let mut loader = Loader::new(&source);
        let mut detector = Self::build(&mut loader, config)?;
        loader.finish()?;
        detector.parameter_count = parameter_count;
        Ok(detector)
    }

    /// A detector with synthetic (untrained, deterministic) weights: for latency measurements
    /// of variants without trained weights, and for parity tests.
    pub fn synthetic(config: ModelConfig) -> Result<Self> {
        config.validate()?;
        let mut loader = Loader::synthetic();
        let detector = Self::build(&mut loader, config)?;
        loader.finish()?;
        Ok(detector)
    }

    /// Every tensor of `config`'s network with its synthetic values, by state-dict name.
    pub fn synthetic_tensors(config: &ModelConfig) -> Result<Vec<(String, Vec<usize>, Vec<f32>)>> {
        config.validate()?;
        let mut loader = Loader::synthetic();
        Self::build(&mut loader, config.clone())?;
        Ok(loader
            .requested()
            .iter()
            .map(|(name, shape)| (name.clone(), shape.clone(), synthetic::tensor(name, shape)))
            .collect())
    }

    fn build(loader: &mut Loader, config: ModelConfig) -> Result<Self> {
        let backbone = Backbone::load(loader, &config)?;
        let neck = Neck::load(loader, &config)?;
        let head = Detect::load(loader, &config, neck.out_channels())?;
        Ok(Detector {
            config,
            backbone,
            neck,
            head,
            parameter_count: 0,
            parallelism: Parallelism::Serial,
        })
    }

    pub fn info(&self) -> &ModelConfig {
        &self.config
    }

    pub fn backbone(&self) -> &Backbone {
        &self.backbone
    }

    /// How the kernels may split work (threads are used only where the build has them).
    pub fn set_parallelism(&mut self, parallelism: Parallelism) {
        self.parallelism = parallelism;
    }

    /// Network only: a (3, H, W) input (H, W multiples of 32) -> raw logits of the three levels.
    /// With `trace`, every stage's output is recorded under the reference's names.
    pub fn forward(&self, input: &Tensor, trace: Option<&mut Trace>) -> Result<Vec<Tensor>> {
        match trace {
            Some(tr) => self.forward_observed(input, &mut |name, t| {
                if !is_sub_step(name) {
                    tr.push((name.to_string(), t.clone()))
                }
            }),
            None => self.forward_observed(input, &mut |_, _| {}),
        }
    }

    /// [`Detector::forward`] calling `observe(step, output)` after the stem, each stage, each
    /// tap, each neck output and each head level, and after the parts of each stage (sub-steps,
    /// see [`Observer`]).
    pub fn forward_observed(&self, input: &Tensor, observe: Observer) -> Result<Vec<Tensor>> {
        let (c, h, w) = input.chw("detector input")?;
        if c != 3 {
            return Err(Error::Shape(format!(
                "detector input must have 3 channels, got {c}"
            )));
        }
        validate_input_size((h, w))?;
        let par = self.parallelism;
        on_pool(par, || {
            let taps = self.backbone.forward(input, par, observe)?;
            let feats = self.neck.forward(&taps, par, observe)?;
            self.head.forward(&feats, par, observe)
        })
    }

    /// Runs letterbox -> network -> decode -> NMS on an RGB8 image (`rgb.len() == 3 * width * height`)
    /// at network input `size` = (height, width), both multiples of 32. Boxes are in image pixels.
    pub fn detect(
        &self,
        rgb: &[u8],
        width: usize,
        height: usize,
        size: (usize, usize),
        options: &DetectOptions,
    ) -> Result<Vec<Detection>> {
        options.validate()?;
        let (input, lb) = letterbox(rgb, width, height, size, self.config.mean, self.config.std)?;
        let raw = self.forward(&input, None)?;
        let strides = STRIDES.map(|s| s as f32);
        decode_and_nms(
            &raw,
            &self.config.anchors,
            &strides,
            self.config.num_classes(),
            options,
            &lb,
        )
    }

    /// Number of parameters in the weight file (BatchNorm running statistics excluded); 0 for
    /// synthetic detectors.
    pub fn parameter_count(&self) -> usize {
        self.parameter_count
    }

    /// Multiply-accumulates of one forward pass at input (height, width).
    pub fn mac_count(&self, size: (usize, usize)) -> Result<MacCount> {
        validate_input_size(size)?;
        let (h3, w3) = (size.0 / 8, size.1 / 8);
        Ok(MacCount {
            backbone: self.backbone.macs(size),
            neck: self.neck.macs(h3, w3),
            head: self.head.macs(h3, w3),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// EfficientFormer-L1's published cost is 1.3 GMAC at 224x224 (classification, which adds
    /// only a 448 x 1000 linear head to the backbone counted here).
    #[test]
    fn l1_backbone_macs_match_published_figure() {
        let det = Detector::synthetic(ModelConfig::variant("l1").unwrap()).unwrap();
        let m = det.mac_count((224, 224)).unwrap();
        let gmac = m.backbone as f64 / 1e9;
        assert!(
            (1.25..1.35).contains(&gmac),
            "L1 backbone at 224: {gmac:.3} GMAC"
        );
        // The detector at 320 with a yolov5n-width neck: about 2.9 GMAC (model spec).
        let total = det.mac_count((320, 320)).unwrap().total() as f64 / 1e9;
        assert!(
            (2.8..3.0).contains(&total),
            "L1 detector at 320: {total:.3} GMAC"
        );
    }
}

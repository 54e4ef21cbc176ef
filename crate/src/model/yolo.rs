//! YOLOv5 v7.0 neck and Detect head (ultralytics/yolov5 `models/common.py`, `models/yolo.py`,
//! the yolov5s head topology): SPPF on P5, a top-down FPN and a bottom-up PAN of C3 blocks,
//! then one 1x1 convolution per level to `anchors * (classes + 5)` logits.
//!
//! YOLOv5's `Conv` is conv (no bias) + BatchNorm (eps 1e-3) + SiLU; the BatchNorm is folded at load.

use crate::error::{Error, Result};
use crate::kernels::Parallelism;
use crate::model::config::{ModelConfig, NECK_BN_EPS};
use crate::model::efficientformer::{conv_bn, Observer};
use crate::model::weights::Loader;
use crate::ops::conv::Conv2d;
use crate::ops::pool::max_pool;
use crate::ops::resize::upsample_nearest2x;
use crate::ops::{concat_channels, Activation};
use crate::tensor::Tensor;

/// YOLOv5 `Conv`: conv + folded BN + SiLU.
pub struct ConvBnSilu(Conv2d);

impl ConvBnSilu {
    fn load(ld: &mut Loader, p: &str, c1: usize, c2: usize, k: usize, s: usize) -> Result<Self> {
        conv_bn(
            ld,
            &format!("{p}.conv"),
            &format!("{p}.bn"),
            [c2, c1, k, k],
            s,
            false,
            NECK_BN_EPS,
        )
        .map(ConvBnSilu)
    }

    fn forward(&self, x: &Tensor, par: Parallelism) -> Result<Tensor> {
        self.0.forward(x, Activation::Silu, par)
    }

    fn macs(&self, h: usize, w: usize) -> u64 {
        self.0.macs(h, w)
    }
}

/// C3 with shortcut-free bottlenecks (the neck's setting).
pub struct C3 {
    cv1: ConvBnSilu,
    cv2: ConvBnSilu,
    cv3: ConvBnSilu,
    /// Bottlenecks: 1x1 then 3x3.
    m: Vec<(ConvBnSilu, ConvBnSilu)>,
}

impl C3 {
    fn load(ld: &mut Loader, p: &str, c1: usize, c2: usize, n: usize) -> Result<Self> {
        let c_ = c2 / 2;
        Ok(C3 {
            cv1: ConvBnSilu::load(ld, &format!("{p}.cv1"), c1, c_, 1, 1)?,
            cv2: ConvBnSilu::load(ld, &format!("{p}.cv2"), c1, c_, 1, 1)?,
            cv3: ConvBnSilu::load(ld, &format!("{p}.cv3"), 2 * c_, c2, 1, 1)?,
            m: (0..n)
                .map(|i| {
                    Ok((
                        ConvBnSilu::load(ld, &format!("{p}.m.{i}.cv1"), c_, c_, 1, 1)?,
                        ConvBnSilu::load(ld, &format!("{p}.m.{i}.cv2"), c_, c_, 3, 1)?,
                    ))
                })
                .collect::<Result<_>>()?,
        })
    }

    fn forward(&self, x: &Tensor, par: Parallelism) -> Result<Tensor> {
        let mut a = self.cv1.forward(x, par)?;
        for (b1, b2) in &self.m {
            a = b2.forward(&b1.forward(&a, par)?, par)?;
        }
        let b = self.cv2.forward(x, par)?;
        self.cv3.forward(&concat_channels(&[&a, &b])?, par)
    }

    fn macs(&self, h: usize, w: usize) -> u64 {
        let m: u64 = self
            .m
            .iter()
            .map(|(a, b)| a.macs(h, w) + b.macs(h, w))
            .sum();
        self.cv1.macs(h, w) + self.cv2.macs(h, w) + self.cv3.macs(h, w) + m
    }
}

pub struct Sppf {
    cv1: ConvBnSilu,
    cv2: ConvBnSilu,
}

impl Sppf {
    fn forward(&self, x: &Tensor, par: Parallelism) -> Result<Tensor> {
        let x = self.cv1.forward(x, par)?;
        let y1 = max_pool(&x, 5, 1, 2, par)?;
        let y2 = max_pool(&y1, 5, 1, 2, par)?;
        let y3 = max_pool(&y2, 5, 1, 2, par)?;
        self.cv2
            .forward(&concat_channels(&[&x, &y1, &y2, &y3])?, par)
    }
}

pub struct Neck {
    sppf: Sppf,
    lat5: ConvBnSilu,
    td4: C3,
    lat4: ConvBnSilu,
    out3: C3,
    down3: ConvBnSilu,
    out4: C3,
    down4: ConvBnSilu,
    out5: C3,
    out_channels: [usize; 3],
}

impl Neck {
    pub fn load(ld: &mut Loader, cfg: &ModelConfig) -> Result<Self> {
        let [_, c3, c4, c5] = cfg.widths;
        let w = |c| cfg.neck_width(c);
        let n = cfg.c3_depth();
        let (w256, w512, w1024) = (w(256), w(512), w(1024));
        Ok(Neck {
            sppf: Sppf {
                cv1: ConvBnSilu::load(ld, "neck.sppf.cv1", c5, c5 / 2, 1, 1)?,
                cv2: ConvBnSilu::load(ld, "neck.sppf.cv2", (c5 / 2) * 4, w1024, 1, 1)?,
            },
            lat5: ConvBnSilu::load(ld, "neck.lat5", w1024, w512, 1, 1)?,
            td4: C3::load(ld, "neck.td4", w512 + c4, w512, n)?,
            lat4: ConvBnSilu::load(ld, "neck.lat4", w512, w256, 1, 1)?,
            out3: C3::load(ld, "neck.out3", w256 + c3, w256, n)?,
            down3: ConvBnSilu::load(ld, "neck.down3", w256, w256, 3, 2)?,
            out4: C3::load(ld, "neck.out4", w256 + w256, w512, n)?,
            down4: ConvBnSilu::load(ld, "neck.down4", w512, w512, 3, 2)?,
            out5: C3::load(ld, "neck.out5", w512 + w512, w1024, n)?,
            out_channels: [w256, w512, w1024],
        })
    }

    pub fn out_channels(&self) -> [usize; 3] {
        self.out_channels
    }

    pub fn forward(
        &self,
        taps: &[Tensor; 3],
        par: Parallelism,
        observe: Observer,
    ) -> Result<[Tensor; 3]> {
        let [p3, p4, p5] = taps;
        let x10 = self.lat5.forward(&self.sppf.forward(p5, par)?, par)?;
        let x13 = self
            .td4
            .forward(&concat_channels(&[&upsample_nearest2x(&x10)?, p4])?, par)?;
        let x14 = self.lat4.forward(&x13, par)?;
        // Each output is observed as soon as it exists, so per-step times split the neck into
        // top-down + P3, the P4 bottom-up step and the P5 bottom-up step.
        let o3 = self
            .out3
            .forward(&concat_channels(&[&upsample_nearest2x(&x14)?, p3])?, par)?;
        observe("neck_p3", &o3);
        let o4 = self.out4.forward(
            &concat_channels(&[&self.down3.forward(&o3, par)?, &x14])?,
            par,
        )?;
        observe("neck_p4", &o4);
        let o5 = self.out5.forward(
            &concat_channels(&[&self.down4.forward(&o4, par)?, &x10])?,
            par,
        )?;
        observe("neck_p5", &o5);
        Ok([o3, o4, o5])
    }

    /// Multiply-accumulates given the stride-8 grid (h3, w3).
    pub fn macs(&self, h3: usize, w3: usize) -> u64 {
        let (h4, w4, h5, w5) = (h3 / 2, w3 / 2, h3 / 4, w3 / 4);
        self.sppf.cv1.macs(h5, w5)
            + self.sppf.cv2.macs(h5, w5)
            + self.lat5.macs(h5, w5)
            + self.td4.macs(h4, w4)
            + self.lat4.macs(h4, w4)
            + self.out3.macs(h3, w3)
            + self.down3.macs(h3, w3)
            + self.out4.macs(h4, w4)
            + self.down4.macs(h4, w4)
            + self.out5.macs(h5, w5)
    }
}

/// The Detect head's per-level 1x1 convolutions (raw logits; decoding is post-processing).
pub struct Detect {
    m: Vec<Conv2d>,
}

impl Detect {
    pub fn load(ld: &mut Loader, cfg: &ModelConfig, in_channels: [usize; 3]) -> Result<Self> {
        let no = 3 * (cfg.num_classes() + 5);
        let m = in_channels
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                let w = ld.tensor(&format!("head.m.{i}.weight"), &[no, c, 1, 1]);
                let b = ld.tensor(&format!("head.m.{i}.bias"), &[no]);
                Conv2d::new([no, c, 1, 1], w, Some(b), 1, 0)
            })
            .collect::<Result<_>>()?;
        Ok(Detect { m })
    }

    pub fn forward(
        &self,
        feats: &[Tensor; 3],
        par: Parallelism,
        observe: Observer,
    ) -> Result<Vec<Tensor>> {
        let mut out = Vec::with_capacity(3);
        for (i, (m, f)) in self.m.iter().zip(feats).enumerate() {
            let r = m.forward(f, Activation::None, par)?;
            observe(&format!("head{i}"), &r);
            out.push(r);
        }
        if out.len() != 3 {
            return Err(Error::Shape("Detect expects three feature levels".into()));
        }
        Ok(out)
    }

    pub fn macs(&self, h3: usize, w3: usize) -> u64 {
        self.m
            .iter()
            .enumerate()
            .map(|(i, m)| m.macs(h3 >> i, w3 >> i))
            .sum()
    }
}

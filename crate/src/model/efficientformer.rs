//! EfficientFormer (V1) backbone: "EfficientFormer: Vision Transformers at MobileNet Speed"
//! (Li et al., NeurIPS 2022); reference code snap-research/EfficientFormer and timm's
//! `efficientformer.py`, whose parameter names the weight files use.
//!
//! Stem (two 3x3 s2 convs) -> four stages of Meta4D blocks (pooling mixer + conv MLP) with a
//! 3x3 s2 downsample in front of stages 2-4; the last `mhsa_blocks` blocks of stage 4 are Meta3D
//! (LayerNorm + multi-head self-attention with a learned relative-position bias, then a
//! linear MLP) on the flattened tokens. As in snap's detection backbone, the outputs of stages
//! 2, 3 and 4 (strides 8, 16, 32) each pass a GroupNorm(1, C) and feed the neck.
//!
//! BatchNorm is folded into the preceding convolution at load time, and each LayerScale that
//! follows a linear map (MLP output, attention projection) is folded into that map's weights.

use crate::error::{Error, Result};
use crate::kernels::Parallelism;
use crate::model::config::{
    ModelConfig, BACKBONE_BN_EPS, GROUP_NORM_EPS, KEY_DIM, LAYER_NORM_EPS, NUM_HEADS, VAL_DIM,
};
use crate::model::weights::Loader;
use crate::ops::attention::{
    gather_attention_bias, multi_head_attention_channels, resample_attention_bias,
};
use crate::ops::conv::Conv2d;
use crate::ops::linear::Linear;
use crate::ops::mlp::conv_mlp_residual;
use crate::ops::norm::{group_norm_1, layer_norm_channels};
use crate::ops::pool::pool_mixer_residual;
use crate::ops::Activation;
use crate::tensor::Tensor;

/// Named intermediate results, in order (parity tests).
pub type Trace = Vec<(String, Tensor)>;

/// Called after each named step of the forward pass with its output: records a [`Trace`],
/// or reads a clock for a per-stage time breakdown. Steps named `outer.inner` (a stage's
/// downsampling and blocks, e.g. `stage4.block3`) are parts of the next plain-named step:
/// timing points for a finer breakdown, not in a [`Trace`].
pub type Observer<'a> = &'a mut (dyn FnMut(&str, &Tensor) + Send);

/// Whether an observed step is a part of a larger one (see [`Observer`]).
pub fn is_sub_step(name: &str) -> bool {
    name.contains('.')
}

/// Per-step durations from clock readings taken in an [`Observer`]: a plain step lasts from
/// the previous plain step to itself (so the plain steps add up to the whole pass), a sub-step
/// from the previous reading of either kind (so the sub-steps split their step).
#[derive(Debug, Default)]
pub struct StepTimes {
    start: f64,
    last_step: f64,
    last_any: f64,
    steps: Vec<(String, f64)>,
}

impl StepTimes {
    /// Starts at clock reading `now` (milliseconds, any origin).
    pub fn new(now: f64) -> Self {
        StepTimes {
            start: now,
            last_step: now,
            last_any: now,
            steps: Vec::new(),
        }
    }

    /// Records step `name` as finished at `now`.
    pub fn mark(&mut self, name: &str, now: f64) {
        let since = if is_sub_step(name) {
            self.last_any
        } else {
            self.last_step
        };
        self.steps.push((name.to_string(), now - since));
        self.last_any = now;
        if !is_sub_step(name) {
            self.last_step = now;
        }
    }

    /// The steps in order, then `("total", now - start)`.
    pub fn finish(mut self, now: f64) -> Vec<(String, f64)> {
        self.steps.push(("total".to_string(), now - self.start));
        self.steps
    }
}

/// Conv2d (with bias) followed by BatchNorm, folded into one convolution.
pub(crate) fn conv_bn(
    ld: &mut Loader,
    conv: &str,
    bn: &str,
    shape: [usize; 4],
    stride: usize,
    conv_bias: bool,
    eps: f32,
) -> Result<Conv2d> {
    let w = ld.tensor(&format!("{conv}.weight"), &shape);
    let b = conv_bias.then(|| ld.tensor(&format!("{conv}.bias"), &[shape[0]]));
    let mut c = Conv2d::new(shape, w, b, stride, shape[2] / 2)?;
    let n = [shape[0]];
    let gamma = ld.tensor(&format!("{bn}.weight"), &n);
    let beta = ld.tensor(&format!("{bn}.bias"), &n);
    let mean = ld.tensor(&format!("{bn}.running_mean"), &n);
    let var = ld.tensor(&format!("{bn}.running_var"), &n);
    c.fold_batch_norm(&gamma, &beta, &mean, &var, eps)?;
    Ok(c)
}

/// Multiplies output channel `o` of a (out, ...) weight and its bias by `scale[o]`.
fn scale_rows(weight: &mut [f32], bias: &mut [f32], scale: &[f32]) {
    let row = weight.len() / scale.len().max(1);
    for (o, &s) in scale.iter().enumerate() {
        weight[o * row..(o + 1) * row]
            .iter_mut()
            .for_each(|w| *w *= s);
        bias[o] *= s;
    }
}

/// Pooling token mixer block on a (C, H, W) map.
pub struct Meta4D {
    /// LayerScale of the mixer branch: x += ls1 * (avgpool(x) - x).
    ls1: Vec<f32>,
    /// fc1 + BN, followed by GELU.
    fc1: Conv2d,
    /// fc2 + BN with ls2 folded in.
    fc2: Conv2d,
}

impl Meta4D {
    fn load(ld: &mut Loader, p: &str, dim: usize) -> Result<Self> {
        let hidden = 4 * dim;
        let fc1 = conv_bn(
            ld,
            &format!("{p}.mlp.fc1"),
            &format!("{p}.mlp.norm1"),
            [hidden, dim, 1, 1],
            1,
            true,
            BACKBONE_BN_EPS,
        )?;
        let mut fc2 = conv_bn(
            ld,
            &format!("{p}.mlp.fc2"),
            &format!("{p}.mlp.norm2"),
            [dim, hidden, 1, 1],
            1,
            true,
            BACKBONE_BN_EPS,
        )?;
        let ls1 = ld.tensor(&format!("{p}.ls1.gamma"), &[dim]);
        let ls2 = ld.tensor(&format!("{p}.ls2.gamma"), &[dim]);
        fc2.scale_output_channels(&ls2)?;
        Ok(Meta4D { ls1, fc1, fc2 })
    }

    pub fn forward(&self, x: &mut Tensor, par: Parallelism) -> Result<()> {
        pool_mixer_residual(x, &self.ls1, par)?;
        conv_mlp_residual(x, &self.fc1, &self.fc2, Activation::Gelu, par)
    }

    pub fn macs(&self, h: usize, w: usize) -> u64 {
        self.fc1.macs(h, w) + self.fc2.macs(h, w)
    }
}

/// MHSA token mixer block on (N, C) tokens of an H x W grid.
pub struct Meta3D {
    norm1: (Vec<f32>, Vec<f32>),
    qkv: Linear,
    /// Output projection with ls1 folded in.
    proj: Linear,
    /// (heads, Ht*Wt) learned bias over (|dy|, |dx|) at the trained grid.
    attention_biases: Vec<f32>,
    train_grid: (usize, usize),
    norm2: (Vec<f32>, Vec<f32>),
    fc1: Linear,
    /// fc2 with ls2 folded in.
    fc2: Linear,
}

/// Loads a PyTorch `nn.Linear` (weight (out, in), bias), optionally scaling its outputs.
fn linear(
    ld: &mut Loader,
    p: &str,
    inp: usize,
    out: usize,
    scale: Option<&[f32]>,
) -> Result<Linear> {
    let mut w = ld.tensor(&format!("{p}.weight"), &[out, inp]);
    let mut b = ld.tensor(&format!("{p}.bias"), &[out]);
    if let Some(s) = scale {
        scale_rows(&mut w, &mut b, s);
    }
    Linear::new(inp, out, w, Some(b))
}

impl Meta3D {
    fn load(ld: &mut Loader, p: &str, dim: usize, train_grid: (usize, usize)) -> Result<Self> {
        let inner = NUM_HEADS * VAL_DIM;
        let qkv_width = NUM_HEADS * (2 * KEY_DIM + VAL_DIM);
        let ls1 = ld.tensor(&format!("{p}.ls1.gamma"), &[dim]);
        let ls2 = ld.tensor(&format!("{p}.ls2.gamma"), &[dim]);
        let norm = |ld: &mut Loader, n: &str| {
            (
                ld.tensor(&format!("{p}.{n}.weight"), &[dim]),
                ld.tensor(&format!("{p}.{n}.bias"), &[dim]),
            )
        };
        Ok(Meta3D {
            norm1: norm(ld, "norm1"),
            qkv: linear(ld, &format!("{p}.token_mixer.qkv"), dim, qkv_width, None)?,
            proj: linear(ld, &format!("{p}.token_mixer.proj"), inner, dim, Some(&ls1))?,
            attention_biases: ld.tensor(
                &format!("{p}.token_mixer.attention_biases"),
                &[NUM_HEADS, train_grid.0 * train_grid.1],
            ),
            train_grid,
            norm2: norm(ld, "norm2"),
            fc1: linear(ld, &format!("{p}.mlp.fc1"), dim, 4 * dim, None)?,
            fc2: linear(ld, &format!("{p}.mlp.fc2"), 4 * dim, dim, Some(&ls2))?,
        })
    }

    /// The (heads, N, N) bias for an H x W token grid, resampled from the trained grid.
    pub fn attention_bias(&self, grid: (usize, usize)) -> Result<Vec<f32>> {
        let table =
            resample_attention_bias(&self.attention_biases, NUM_HEADS, self.train_grid, grid)?;
        gather_attention_bias(&table, NUM_HEADS, grid)
    }

    /// Updates a (C, H, W) map in place. The tokens of the reference (its (H*W, C) rows) are
    /// the map's columns here: every layer runs channel-major, as 1x1 products on the map, so
    /// no layout change is needed around the block and every product writes rows.
    pub fn forward(&self, x: &mut Tensor, grid: (usize, usize), par: Parallelism) -> Result<()> {
        let (_, h, w) = x.chw("meta3d")?;
        if (h, w) != grid {
            return Err(Error::Shape(format!(
                "meta3d on a {h}x{w} map was given grid {grid:?}"
            )));
        }
        let t = layer_norm_channels(x, &self.norm1.0, &self.norm1.1, LAYER_NORM_EPS)?;
        let qkv = self.qkv.forward_channels(&t, Activation::None, par)?;
        let bias = self.attention_bias(grid)?;
        let scale = (KEY_DIM as f32).powf(-0.5);
        let a =
            multi_head_attention_channels(&qkv, NUM_HEADS, KEY_DIM, VAL_DIM, &bias, scale, par)?;
        let y = self.proj.forward_channels(&a, Activation::None, par)?;
        x.data_mut()
            .iter_mut()
            .zip(y.data())
            .for_each(|(a, b)| *a += b);
        let t = layer_norm_channels(x, &self.norm2.0, &self.norm2.1, LAYER_NORM_EPS)?;
        let hidden = self.fc1.forward_channels(&t, Activation::Gelu, par)?;
        let y = self.fc2.forward_channels(&hidden, Activation::None, par)?;
        x.data_mut()
            .iter_mut()
            .zip(y.data())
            .for_each(|(a, b)| *a += b);
        Ok(())
    }

    pub fn macs(&self, n: usize) -> u64 {
        let attn = (n * n * NUM_HEADS * (KEY_DIM + VAL_DIM)) as u64;
        self.qkv.macs(n) + self.proj.macs(n) + self.fc1.macs(n) + self.fc2.macs(n) + attn
    }
}

/// One token-mixer block with synthetic weights, for measuring what a block costs.
pub enum Block {
    /// Pooling mixer on a (C, H, W) map.
    Meta4D(Meta4D),
    /// MHSA mixer on the H*W tokens of a (C, H, W) map, its bias table trained at the same grid.
    Meta3D(Meta3D),
}

impl Block {
    /// A Meta4D (`mhsa == false`) or Meta3D block of width `dim` for an `grid` token grid.
    pub fn synthetic(mhsa: bool, dim: usize, grid: (usize, usize)) -> Result<Self> {
        if dim == 0 || grid.0 == 0 || grid.1 == 0 {
            return Err(Error::InvalidInput(format!(
                "block width {dim} and grid {grid:?} must be positive"
            )));
        }
        let mut ld = Loader::synthetic();
        let block = if mhsa {
            Block::Meta3D(Meta3D::load(&mut ld, "block", dim, grid)?)
        } else {
            Block::Meta4D(Meta4D::load(&mut ld, "block", dim)?)
        };
        ld.finish()?;
        Ok(block)
    }

    /// The input layout both kinds of block take: (C, H, W).
    pub fn input_shape(&self, dim: usize, grid: (usize, usize)) -> Vec<usize> {
        vec![dim, grid.0, grid.1]
    }

    /// Updates `x` in place (the block is residual).
    pub fn forward(&self, x: &mut Tensor, grid: (usize, usize), par: Parallelism) -> Result<()> {
        match self {
            Block::Meta4D(b) => b.forward(x, par),
            Block::Meta3D(b) => b.forward(x, grid, par),
        }
    }

    pub fn macs(&self, grid: (usize, usize)) -> u64 {
        match self {
            Block::Meta4D(b) => b.macs(grid.0, grid.1),
            Block::Meta3D(b) => b.macs(grid.0 * grid.1),
        }
    }
}

pub struct Stage {
    downsample: Option<Conv2d>,
    pool_blocks: Vec<Meta4D>,
    mhsa_blocks: Vec<Meta3D>,
}

impl Stage {
    pub fn meta4d_blocks(&self) -> &[Meta4D] {
        &self.pool_blocks
    }

    pub fn meta3d_blocks(&self) -> &[Meta3D] {
        &self.mhsa_blocks
    }

    /// Runs the stage; `name` prefixes the sub-steps it reports to `observe`.
    pub fn forward(
        &self,
        mut x: Tensor,
        par: Parallelism,
        name: &str,
        observe: Observer,
    ) -> Result<Tensor> {
        if let Some(ds) = &self.downsample {
            x = ds.forward(&x, Activation::None, par)?;
            observe(&format!("{name}.downsample"), &x);
        }
        for (j, b) in self.pool_blocks.iter().enumerate() {
            b.forward(&mut x, par)?;
            observe(&format!("{name}.block{j}"), &x);
        }
        let (_, h, w) = x.chw("stage")?;
        for (j, b) in self.mhsa_blocks.iter().enumerate() {
            b.forward(&mut x, (h, w), par)?;
            observe(&format!("{name}.block{}", self.pool_blocks.len() + j), &x);
        }
        Ok(x)
    }
}

pub struct Backbone {
    stem: [Conv2d; 2],
    stages: Vec<Stage>,
    /// GroupNorm(1, C) (weight, bias) on the taps of stages 2, 3, 4.
    norms: Vec<(Vec<f32>, Vec<f32>)>,
}

impl Backbone {
    pub fn load(ld: &mut Loader, cfg: &ModelConfig) -> Result<Self> {
        let w = cfg.widths;
        let d = cfg.depths;
        let eps = BACKBONE_BN_EPS;
        let stem = [
            conv_bn(
                ld,
                "backbone.stem.conv1",
                "backbone.stem.norm1",
                [w[0] / 2, 3, 3, 3],
                2,
                true,
                eps,
            )?,
            conv_bn(
                ld,
                "backbone.stem.conv2",
                "backbone.stem.norm2",
                [w[0], w[0] / 2, 3, 3],
                2,
                true,
                eps,
            )?,
        ];
        let mut stages = Vec::new();
        for i in 0..4 {
            let p = format!("backbone.stages.{i}");
            let downsample = if i > 0 {
                let shape = [w[i], w[i - 1], 3, 3];
                Some(conv_bn(
                    ld,
                    &format!("{p}.downsample.conv"),
                    &format!("{p}.downsample.norm"),
                    shape,
                    2,
                    true,
                    eps,
                )?)
            } else {
                None
            };
            let mhsa = if i == 3 { cfg.mhsa_blocks } else { 0 };
            let pools = d[i] - mhsa;
            let pool_blocks = (0..pools)
                .map(|j| Meta4D::load(ld, &format!("{p}.blocks.{j}"), w[i]))
                .collect::<Result<_>>()?;
            // Block index `pools` is the parameter-free Flat, as in timm.
            let mhsa_blocks = (0..mhsa)
                .map(|j| {
                    Meta3D::load(
                        ld,
                        &format!("{p}.blocks.{}", pools + 1 + j),
                        w[i],
                        cfg.train_grid(),
                    )
                })
                .collect::<Result<_>>()?;
            stages.push(Stage {
                downsample,
                pool_blocks,
                mhsa_blocks,
            });
        }
        let norms = (0..3)
            .map(|k| {
                let c = [w[k + 1]];
                (
                    ld.tensor(&format!("backbone.norms.{k}.weight"), &c),
                    ld.tensor(&format!("backbone.norms.{k}.bias"), &c),
                )
            })
            .collect();
        Ok(Backbone {
            stem,
            stages,
            norms,
        })
    }

    pub fn stages(&self) -> &[Stage] {
        &self.stages
    }

    /// (3, H, W) input -> the three normalised taps at strides 8, 16, 32.
    pub fn forward(&self, x: &Tensor, par: Parallelism, observe: Observer) -> Result<[Tensor; 3]> {
        let x = self.stem[0].forward(x, Activation::Relu, par)?;
        let mut x = self.stem[1].forward(&x, Activation::Relu, par)?;
        observe("stem", &x);
        let mut taps = Vec::with_capacity(3);
        for (i, stage) in self.stages.iter().enumerate() {
            let name = format!("stage{}", i + 1);
            x = stage.forward(x, par, &name, observe)?;
            observe(&name, &x);
            if i >= 1 {
                let (g, b) = &self.norms[i - 1];
                taps.push(group_norm_1(&x, g, b, GROUP_NORM_EPS)?);
            }
        }
        for (k, t) in taps.iter().enumerate() {
            observe(&format!("tap{}", k + 3), t);
        }
        taps.try_into()
            .map_err(|_| Error::Shape("the backbone yields three taps".into()))
    }

    /// Multiply-accumulates at input (H, W) (convolutions, linear maps and attention products).
    pub fn macs(&self, size: (usize, usize)) -> u64 {
        let (mut h, mut w) = size;
        let mut total = 0;
        for c in &self.stem {
            total += c.macs(h, w);
            (h, w) = c.output_size(h, w);
        }
        for s in &self.stages {
            if let Some(ds) = &s.downsample {
                total += ds.macs(h, w);
                (h, w) = ds.output_size(h, w);
            }
            total += s.pool_blocks.iter().map(|b| b.macs(h, w)).sum::<u64>();
            total += s.mhsa_blocks.iter().map(|b| b.macs(h * w)).sum::<u64>();
        }
        total
    }
}

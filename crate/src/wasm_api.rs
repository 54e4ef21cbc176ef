//! JavaScript bindings (feature `wasm`, target wasm32-unknown-unknown).
//!
//! A thin layer over [`Detector`]: bytes and numbers in, a flat `Float32Array` of boxes or a
//! JSON string out. Every fallible call returns a JavaScript `Error` with the library's
//! one-line message; nothing here panics on user input (a panic would kill the instance).
//!
//! Three builds share this file: threads + relaxed SIMD, threads + SIMD128 (both with
//! wasm-bindgen-rayon's pool, `initThreadPool(n)` must be awaited first), and a
//! single-threaded SIMD128 build for pages that are not cross-origin isolated.

use wasm_bindgen::prelude::*;

use crate::bench::{self, GemmCase};
use crate::error::Error;
use crate::kernels::parallel::on_pool;
use crate::kernels::Parallelism;
use crate::model::efficientformer::{Block, StepTimes};
use crate::model::{DetectOptions, Detector, ModelConfig};
use crate::Tensor;

#[cfg(feature = "wasm-threads")]
pub use wasm_bindgen_rayon::init_thread_pool;

fn js_error(e: Error) -> JsError {
    JsError::new(&e.to_string())
}

/// Which SIMD flavour this binary was compiled with.
fn simd_flavour() -> &'static str {
    if cfg!(target_feature = "relaxed-simd") {
        "relaxed-simd"
    } else if cfg!(target_feature = "simd128") {
        "simd128"
    } else {
        "scalar"
    }
}

/// `{"simd": "relaxed-simd" | "simd128" | "scalar", "threads": bool}`.
#[wasm_bindgen(js_name = buildInfo)]
pub fn build_info() -> String {
    serde_json::json!({ "simd": simd_flavour(), "threads": cfg!(feature = "wasm-threads") })
        .to_string()
}

/// Milliseconds from the global `performance` clock (window or worker).
///
/// `timeOrigin + now()`: each Worker's `now()` counts from its own start, and a pass that runs
/// on the thread pool reads the clock on a pool Worker, so readings from different threads
/// must share an origin.
fn now_ms() -> f64 {
    let perf = js_sys::Reflect::get(&js_sys::global(), &JsValue::from_str("performance")).ok();
    perf.and_then(|p| {
        let now = js_sys::Reflect::get(&p, &JsValue::from_str("now")).ok()?;
        let origin = js_sys::Reflect::get(&p, &JsValue::from_str("timeOrigin"))
            .ok()?
            .as_f64()?;
        let f: js_sys::Function = now.dyn_into().ok()?;
        Some(origin + f.call0(&p).ok()?.as_f64()?)
    })
    .unwrap_or_else(js_sys::Date::now)
}

#[wasm_bindgen]
pub struct WasmDetector {
    inner: Detector,
    /// RGB scratch reused across frames (frames arrive as RGBA).
    rgb: Vec<u8>,
    threads: usize,
}

#[wasm_bindgen]
impl WasmDetector {
    /// Loads a safetensors weight file.
    #[wasm_bindgen(constructor)]
    pub fn new(weights: &[u8]) -> Result<WasmDetector, JsError> {
        Ok(Self::wrap(
            Detector::from_safetensors(weights).map_err(js_error)?,
        ))
    }

    /// An untrained detector with synthetic weights (latency measurements): `variant` is
    /// "l1", "l3" or "l7"; `mhsa_blocks` overrides the published MHSA block count when given.
    pub fn synthetic(variant: &str, mhsa_blocks: Option<u32>) -> Result<WasmDetector, JsError> {
        let mut config = ModelConfig::variant(variant).map_err(js_error)?;
        if let Some(n) = mhsa_blocks {
            config.mhsa_blocks = n as usize;
        }
        Ok(Self::wrap(Detector::synthetic(config).map_err(js_error)?))
    }

    fn wrap(inner: Detector) -> WasmDetector {
        WasmDetector {
            inner,
            rgb: Vec::new(),
            threads: 1,
        }
    }

    /// Threads the kernels may use (1 = serial). Only threaded builds honour more than 1;
    /// the pool itself is sized by `initThreadPool`.
    #[wasm_bindgen(js_name = setThreads)]
    pub fn set_threads(&mut self, threads: u32) {
        self.threads = if cfg!(feature = "wasm-threads") {
            (threads as usize).max(1)
        } else {
            1
        };
        self.inner.set_parallelism(match self.threads {
            1 => Parallelism::Serial,
            n => Parallelism::Threads(n),
        });
    }

    /// Model metadata, parameter count and build as JSON.
    pub fn info(&self) -> String {
        let c = self.inner.info();
        serde_json::json!({
            "variant": c.variant,
            "widths": c.widths,
            "depths": c.depths,
            "mhsaBlocks": c.mhsa_blocks,
            "widthMultiple": c.width_multiple,
            "depthMultiple": c.depth_multiple,
            "trainSize": [c.train_size.0, c.train_size.1],
            "classNames": c.class_names,
            "anchors": c.anchors,
            "mean": c.mean,
            "std": c.std,
            "parameters": self.inner.parameter_count(),
            "simd": simd_flavour(),
            "threads": self.threads,
        })
        .to_string()
    }

    /// Detects on an RGBA frame (`ImageData.data`) at network input `size_h` x `size_w`.
    /// Returns 6 floats per box: x1, y1, x2, y2 (frame pixels), score, class id.
    pub fn detect(
        &mut self,
        rgba: &[u8],
        width: u32,
        height: u32,
        size_h: u32,
        size_w: u32,
        conf: f32,
        iou: f32,
        max_det: u32,
    ) -> Result<Vec<f32>, JsError> {
        let (w, h) = (width as usize, height as usize);
        let pixels = w.checked_mul(h).filter(|&p| p > 0);
        match pixels {
            Some(p) if p.checked_mul(4) == Some(rgba.len()) => {}
            _ => {
                return Err(js_error(Error::InvalidInput(format!(
                    "frame is {width}x{height} but {} RGBA bytes were given (need 4 per pixel, non-zero size)",
                    rgba.len()
                ))))
            }
        }
        self.rgb.clear();
        self.rgb
            .extend(rgba.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]));
        let options = DetectOptions {
            conf_threshold: conf,
            iou_threshold: iou,
            max_detections: max_det as usize,
        };
        let dets = self
            .inner
            .detect(
                &self.rgb,
                w,
                h,
                (size_h as usize, size_w as usize),
                &options,
            )
            .map_err(js_error)?;
        Ok(dets
            .iter()
            .flat_map(|d| [d.x1, d.y1, d.x2, d.y2, d.score, d.class_id as f32])
            .collect())
    }

    /// Multiply-accumulates at an input size: `{"backbone", "neck", "head", "total"}`.
    #[wasm_bindgen(js_name = macCount)]
    pub fn mac_count(&self, size_h: u32, size_w: u32) -> Result<String, JsError> {
        let m = self
            .inner
            .mac_count((size_h as usize, size_w as usize))
            .map_err(js_error)?;
        Ok(serde_json::json!({ "backbone": m.backbone, "neck": m.neck, "head": m.head, "total": m.total() })
            .to_string())
    }

    /// One forward pass on a grey input with a per-step time breakdown:
    /// `[{"step": "stem", "ms": ..}, .., {"step": "total", "ms": ..}]`.
    pub fn profile(&self, size_h: u32, size_w: u32) -> Result<String, JsError> {
        let (h, w) = (size_h as usize, size_w as usize);
        crate::model::preprocess::validate_input_size((h, w)).map_err(js_error)?;
        let input = Tensor::new(&[3, h, w], vec![0.5; 3 * h * w]).map_err(js_error)?;
        let mut times = StepTimes::new(now_ms());
        self.inner
            .forward_observed(&input, &mut |name, _| times.mark(name, now_ms()))
            .map_err(js_error)?;
        let steps = times
            .finish(now_ms())
            .into_iter()
            .map(|(step, ms)| serde_json::json!({ "step": step, "ms": ms }));
        Ok(serde_json::Value::Array(steps.collect()).to_string())
    }
}

/// One Meta4D (pooling) or Meta3D (MHSA) block with synthetic weights, timed alone.
#[wasm_bindgen]
pub struct WasmBlock {
    block: Block,
    input: Tensor,
    grid: (usize, usize),
    parallelism: Parallelism,
}

#[wasm_bindgen]
impl WasmBlock {
    /// `kind` is "meta4d" or "meta3d"; `dim` the width; the token grid is `grid_h` x `grid_w`.
    #[wasm_bindgen(constructor)]
    pub fn new(kind: &str, dim: u32, grid_h: u32, grid_w: u32) -> Result<WasmBlock, JsError> {
        let mhsa = match kind {
            "meta4d" => false,
            "meta3d" => true,
            other => {
                return Err(js_error(Error::InvalidInput(format!(
                    "block kind '{other}' (expected meta4d or meta3d)"
                ))))
            }
        };
        let grid = (grid_h as usize, grid_w as usize);
        let block = Block::synthetic(mhsa, dim as usize, grid).map_err(js_error)?;
        let shape = block.input_shape(dim as usize, grid);
        let n = shape.iter().product();
        let input = Tensor::new(&shape, crate::model::synthetic::uniform("block-input", n))
            .map_err(js_error)?;
        Ok(WasmBlock {
            block,
            input,
            grid,
            parallelism: Parallelism::Serial,
        })
    }

    #[wasm_bindgen(js_name = setThreads)]
    pub fn set_threads(&mut self, threads: u32) {
        self.parallelism = parallelism_for(threads);
    }

    /// Multiply-accumulates of one forward pass.
    pub fn macs(&self) -> f64 {
        self.block.macs(self.grid) as f64
    }

    /// Runs the block once on a copy of its input; returns milliseconds.
    pub fn run(&self) -> Result<f64, JsError> {
        let mut x = self.input.clone();
        let start = now_ms();
        let (block, grid, par) = (&self.block, self.grid, self.parallelism);
        on_pool(par, || block.forward(&mut x, grid, par)).map_err(js_error)?;
        Ok(now_ms() - start)
    }
}

/// The kernel split for a thread count: serial for one thread and in single-threaded builds.
fn parallelism_for(threads: u32) -> Parallelism {
    match threads {
        n if n > 1 && cfg!(feature = "wasm-threads") => Parallelism::Threads(n as usize),
        _ => Parallelism::Serial,
    }
}

/// One GEMM shape for the benchmark page: `C (m x n) = A (m x k) . B (k x n)`, `A` packed once
/// as the model's weights are, so a run covers packing `B` and the micro-kernel loop; with
/// `B` packed ahead too, the micro-kernel loop alone.
#[wasm_bindgen]
pub struct WasmGemm {
    case: GemmCase,
    parallelism: Parallelism,
}

#[wasm_bindgen]
impl WasmGemm {
    /// `kernel` names one of [`gemm_kernels`] (default: the best one in this build).
    #[wasm_bindgen(constructor)]
    pub fn new(kernel: Option<String>, m: u32, n: u32, k: u32) -> Result<WasmGemm, JsError> {
        let case = GemmCase::new(kernel.as_deref(), m as usize, n as usize, k as usize)
            .map_err(js_error)?;
        Ok(WasmGemm {
            case,
            parallelism: Parallelism::Serial,
        })
    }

    pub fn kernel(&self) -> String {
        self.case.kernel_name().to_string()
    }

    #[wasm_bindgen(js_name = setThreads)]
    pub fn set_threads(&mut self, threads: u32) {
        self.parallelism = parallelism_for(threads);
    }

    pub fn macs(&self) -> f64 {
        self.case.macs() as f64
    }

    /// One product; returns milliseconds. `prepacked`: with `B` packed ahead (the
    /// micro-kernel loop alone) instead of packed in the call.
    pub fn run(&mut self, prepacked: Option<bool>) -> f64 {
        let start = now_ms();
        let (case, par) = (&mut self.case, self.parallelism);
        if prepacked.unwrap_or(false) {
            on_pool(par, || case.run_prepacked(par));
        } else {
            on_pool(par, || case.run(par));
        }
        now_ms() - start
    }
}

/// The GEMM kernels in this build, best first, as a JSON array of names.
#[wasm_bindgen(js_name = gemmKernels)]
pub fn gemm_kernels() -> String {
    serde_json::json!(bench::kernel_names()).to_string()
}

/// One run of this build's SIMD peak loop ([`bench::simd_peak_chains`]): `iters` steps of
/// twelve independent multiply-add chains on one core. Returns the multiply-adds done; the
/// caller times the call, as it times a GEMM, so both figures see the same machine state.
#[wasm_bindgen(js_name = simdPeak)]
pub fn simd_peak(iters: u32) -> Result<f64, JsError> {
    bench::simd_peak_chains(iters as usize)
        .map(|macs| macs as f64)
        .map_err(js_error)
}

/// Bytes of linear memory the module holds now (wasm memory only grows, never shrinks).
#[wasm_bindgen(js_name = memoryBytes)]
pub fn memory_bytes() -> f64 {
    (core::arch::wasm32::memory_size::<0>() * 65536) as f64
}

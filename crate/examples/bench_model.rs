//! Whole-detector latency benchmark: prints one JSON line per configuration and one per-stage
//! breakdown line. Runs natively and under wasmtime (wasm32-wasip1); the browser twin is the
//! benchmark page. Weights are synthetic: latency does not depend on weight values.
//!
//! ```sh
//! cargo run --release --example bench_model -- --model l1 --sizes 320 --threads 1,2 --runs 20
//! ```
//!
//! `peak_pct` relates GMAC/s to the wasm SIMD128 limit of this machine kind (28.6 GMAC/s per
//! core, `--peak-per-core` to change) times the thread count.

use std::time::Instant;

use effyolo::kernels::Parallelism;
use effyolo::model::efficientformer::StepTimes;
use effyolo::model::{synthetic, Detector, ModelConfig};
use effyolo::Tensor;

struct Args {
    model: String,
    mhsa: Option<usize>,
    sizes: Vec<(usize, usize)>,
    threads: Vec<usize>,
    runs: usize,
    warmup: usize,
    build: String,
    peak_per_core: f64,
}

fn parse_size(s: &str) -> Result<(usize, usize), String> {
    let bad = || format!("bad size '{s}' (expected N or HxW)");
    match s.split_once('x') {
        Some((h, w)) => Ok((h.parse().map_err(|_| bad())?, w.parse().map_err(|_| bad())?)),
        None => s.parse().map(|n| (n, n)).map_err(|_| bad()),
    }
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        model: "l1".into(),
        mhsa: None,
        sizes: vec![(320, 320)],
        threads: vec![1],
        runs: 20,
        warmup: 3,
        build: default_build().into(),
        peak_per_core: 28.6,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--model" => a.model = value()?,
            "--mhsa" => a.mhsa = Some(value()?.parse().map_err(|e| format!("--mhsa: {e}"))?),
            "--sizes" => {
                a.sizes = value()?
                    .split(',')
                    .map(parse_size)
                    .collect::<Result<_, _>>()?
            }
            "--threads" => {
                a.threads = value()?
                    .split(',')
                    .map(|t| t.parse().map_err(|e| format!("--threads: {e}")))
                    .collect::<Result<_, _>>()?
            }
            "--runs" => a.runs = value()?.parse().map_err(|e| format!("--runs: {e}"))?,
            "--warmup" => a.warmup = value()?.parse().map_err(|e| format!("--warmup: {e}"))?,
            "--build" => a.build = value()?,
            "--peak-per-core" => {
                a.peak_per_core = value()?
                    .parse()
                    .map_err(|e| format!("--peak-per-core: {e}"))?
            }
            other => return Err(format!("unknown argument '{other}'")),
        }
    }
    if a.runs == 0 {
        return Err("--runs must be at least 1".into());
    }
    Ok(a)
}

fn default_build() -> &'static str {
    if cfg!(target_feature = "relaxed-simd") {
        "wasm-relaxed"
    } else if cfg!(target_feature = "simd128") {
        "wasm-simd128"
    } else if cfg!(target_arch = "wasm32") {
        "wasm-scalar"
    } else {
        "native"
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(&args) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> effyolo::Result<()> {
    let mut config = ModelConfig::variant(&args.model)?;
    if let Some(m) = args.mhsa {
        config.mhsa_blocks = m;
    }
    let mut det = Detector::synthetic(config.clone())?;
    for &(h, w) in &args.sizes {
        let input = Tensor::new(&[3, h, w], synthetic::input(h, w))?;
        let gmac = det.mac_count((h, w))?.total() as f64 / 1e9;
        for &threads in &args.threads {
            det.set_parallelism(if threads > 1 {
                Parallelism::Threads(threads)
            } else {
                Parallelism::Serial
            });
            for _ in 0..args.warmup {
                det.forward(&input, None)?;
            }
            let mut times = Vec::with_capacity(args.runs);
            let mut stages: Vec<(String, f64)> = Vec::new();
            for run in 0..args.runs {
                let start = Instant::now();
                let clock = || start.elapsed().as_secs_f64() * 1e3;
                let mut step_times = StepTimes::new(0.0);
                det.forward_observed(&input, &mut |name, _| step_times.mark(name, clock()))?;
                let mut steps = step_times.finish(clock());
                times.push(steps.pop().map_or(0.0, |(_, total)| total));
                if run == 0 {
                    stages = steps;
                } else {
                    stages
                        .iter_mut()
                        .zip(steps)
                        .for_each(|(s, (_, ms))| s.1 += ms);
                }
            }
            times.sort_by(f64::total_cmp);
            let median = percentile(&times, 0.5);
            let gmac_per_s = gmac / (median / 1e3);
            let line = serde_json::json!({
                "model": args.model,
                "mhsa_blocks": config.mhsa_blocks,
                "size": if h == w { serde_json::json!(h) } else { serde_json::json!(format!("{h}x{w}")) },
                "threads": threads,
                "build": args.build,
                "runs": args.runs,
                "median_ms": round2(median),
                "p95_ms": round2(percentile(&times, 0.95)),
                "gmac": round2(gmac),
                "gmac_per_s": round2(gmac_per_s),
                "peak_pct": round2(100.0 * gmac_per_s / (args.peak_per_core * threads as f64)),
            });
            println!("{line}");
            // In forward order: see `StepTimes` (plain steps add up to the total, `a.b`
            // sub-steps split their step).
            let breakdown: Vec<serde_json::Value> = stages
                .iter()
                .map(|(name, total)| serde_json::json!({ "step": name, "ms": round2(total / args.runs as f64) }))
                .collect();
            println!(
                "{}",
                serde_json::json!({ "model": args.model, "size": h, "threads": threads, "build": args.build, "stages_ms": breakdown })
            );
        }
    }
    Ok(())
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

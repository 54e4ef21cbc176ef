//! GEMM micro-benchmark: prints one JSON line per (kernel, shape, thread count) with the
//! median of `--runs` timed samples after warm-up. Runs natively and under wasmtime
//! (wasm32-wasip1, `+simd128` or `+simd128,+relaxed-simd`).
//!
//! ```sh
//! cargo run --release --example bench_gemm -- --threads 1,2
//! ```
//!
//! The left operand is pre-packed, as the model's weights are, so a `gemm` figure covers
//! packing `B` (the per-call work) plus the blocked micro-kernel loop; a `gemm-prepacked`
//! figure, the same product with `B` packed ahead too, is the micro-kernel loop alone. The default shapes are the 1x1
//! convolutions of an L1 backbone at 320x320 (`m` = output channels, `n` = pixels,
//! `k` = input channels), a 3x3 neck convolution as its GEMM, and a 256^3 square.
//! `--im2col` adds the 3x3 convolutions themselves (`B` generated from the image).
//!
//! `--peak` (wasm builds) first prints the core's limit for this build's instructions,
//! `{"kernel":"peak",...}`: twelve independent multiply-add chains, `acc = relaxed_madd(x, y,
//! acc)` in a relaxed-SIMD build (the accumulator as the addend, as in the micro-kernel) and
//! `acc = acc * x + y` with `f32x4.mul` + `f32x4.add` otherwise. A kernel's `gmac_per_s`
//! divided by it is the fraction of peak reached.

use std::time::Instant;

use effyolo::bench::{self, fill};
use effyolo::kernels::gemm::{
    self, GemmKernel, GemmOptions, Im2Col, Lhs, MatMut, MatRef, PackedA, PackedB, Rhs,
};
use effyolo::kernels::parallel::THREADS_COMPILED;
use effyolo::kernels::Parallelism;

struct Args {
    kernels: Vec<&'static dyn GemmKernel>,
    shapes: Vec<(usize, usize, usize)>,
    threads: Vec<usize>,
    runs: usize,
    warmup: usize,
    im2col: bool,
    peak: bool,
}

const DEFAULT_SHAPES: [(usize, usize, usize); 9] = [
    (192, 6400, 48),
    (48, 6400, 192),
    (384, 1600, 96),
    (96, 1600, 384),
    (896, 400, 224),
    (224, 400, 896),
    (1792, 100, 448),
    (64, 1600, 576),
    (256, 256, 256),
];

fn parse_shape(s: &str) -> Result<(usize, usize, usize), String> {
    let dims: Vec<usize> = s
        .split('x')
        .map(|d| {
            d.parse()
                .map_err(|_| format!("bad shape '{s}' (expected MxNxK)"))
        })
        .collect::<Result<_, _>>()?;
    match dims[..] {
        [m, n, k] => Ok((m, n, k)),
        _ => Err(format!("bad shape '{s}' (expected MxNxK)")),
    }
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        kernels: vec![gemm::best_kernel()],
        shapes: DEFAULT_SHAPES.to_vec(),
        threads: vec![1],
        runs: 20,
        warmup: 3,
        im2col: false,
        peak: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--kernels" => {
                let list = value()?;
                args.kernels = if list == "all" {
                    gemm::KERNELS
                        .iter()
                        .copied()
                        .filter(|k| k.is_supported())
                        .collect()
                } else {
                    list.split(',')
                        .map(|name| {
                            gemm::kernel_by_name(name)
                                .ok_or_else(|| format!("kernel '{name}' is not available here"))
                        })
                        .collect::<Result<_, _>>()?
                };
            }
            "--shapes" => {
                args.shapes = value()?
                    .split(',')
                    .map(parse_shape)
                    .collect::<Result<_, _>>()?
            }
            "--threads" => {
                args.threads = value()?
                    .split(',')
                    .map(|t| t.parse().map_err(|e| format!("--threads: {e}")))
                    .collect::<Result<_, _>>()?
            }
            "--runs" => args.runs = value()?.parse().map_err(|e| format!("--runs: {e}"))?,
            "--warmup" => args.warmup = value()?.parse().map_err(|e| format!("--warmup: {e}"))?,
            "--im2col" => args.im2col = true,
            "--peak" => args.peak = true,
            "--help" | "-h" => {
                return Err(
                    "options: --kernels all|NAME,.. --shapes MxNxK,.. --threads N,.. \
                            --runs N --warmup N --im2col --peak"
                        .into(),
                )
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    if args.runs == 0 {
        return Err("--runs must be at least 1".into());
    }
    Ok(args)
}

/// Median seconds per call of `f`, timing batches long enough for the clock.
fn median_seconds(runs: usize, warmup: usize, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    f();
    let once = start.elapsed().as_secs_f64();
    let reps = ((2e-3 / once.max(1e-9)) as usize).clamp(1, 1000);
    for _ in 0..warmup {
        f();
    }
    let mut samples: Vec<f64> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..reps {
                f();
            }
            start.elapsed().as_secs_f64() / reps as f64
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// Runs `f` with `threads` workers available (rayon's pool when compiled in).
fn with_threads<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    #[cfg(feature = "threads")]
    if threads > 1 {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("thread pool");
        return pool.install(f);
    }
    let _ = threads;
    f()
}

fn print_line(kernel: &str, op: &str, (m, n, k): (usize, usize, usize), threads: usize, secs: f64) {
    let macs = (m * n * k) as f64;
    println!(
        "{{\"kernel\":\"{kernel}\",\"op\":\"{op}\",\"m\":{m},\"n\":{n},\"k\":{k},\"threads\":{threads},\
         \"median_ms\":{:.4},\"gmac_per_s\":{:.2}}}",
        secs * 1e3,
        macs / secs / 1e9
    );
}

/// Multiply-adds per second of the build's SIMD peak ([`bench::simd_peak_chains`]).
fn peak_gmac_per_s(runs: usize) -> Result<f64, String> {
    let iters = 1 << 20;
    let macs = bench::simd_peak_chains(iters).map_err(|e| e.to_string())?;
    let secs = median_seconds(runs, 3, || {
        bench::simd_peak_chains(iters).expect("measured once already");
    });
    Ok(macs as f64 / secs / 1e9)
}

fn main() {
    let args = parse_args().unwrap_or_else(|e| {
        eprintln!("bench_gemm: {e}");
        std::process::exit(2);
    });
    if args.peak {
        match peak_gmac_per_s(args.runs) {
            Ok(peak) => println!(
                "{{\"kernel\":\"peak\",\"op\":\"peak\",\"threads\":1,\"gmac_per_s\":{peak:.2}}}"
            ),
            Err(e) => eprintln!("bench_gemm: --peak: {e}"),
        }
    }
    for &threads in &args.threads {
        if threads > 1 && !THREADS_COMPILED {
            eprintln!(
                "bench_gemm: skipping {threads} threads: built without the `threads` feature"
            );
            continue;
        }
        let par = if threads > 1 {
            Parallelism::Threads(threads)
        } else {
            Parallelism::Serial
        };
        for &kernel in &args.kernels {
            for &(m, n, k) in &args.shapes {
                let a = fill(m * k, 1);
                let b = fill(k * n, 2);
                let mut c = vec![0.0; m * n];
                let packed = PackedA::new(kernel, MatRef::row_major(&a, m, k));
                let packed_b = PackedB::new(kernel, MatRef::row_major(&b, k, n));
                let rhs_forms = [
                    ("gemm", Rhs::Matrix(MatRef::row_major(&b, k, n))),
                    ("gemm-prepacked", Rhs::Packed(&packed_b)),
                ];
                for (op, rhs) in rhs_forms {
                    let secs = with_threads(threads, || {
                        median_seconds(args.runs, args.warmup, || {
                            kernel.matmul(
                                par,
                                Lhs::Packed(&packed),
                                rhs,
                                MatMut::row_major(&mut c, m, n),
                                &GemmOptions::default(),
                            )
                        })
                    });
                    print_line(kernel.name(), op, (m, n, k), threads, secs);
                }
            }
            if args.im2col {
                // 3x3 stride-1 convolutions of the neck (yolov5n width) at 320x320 input.
                for (cout, cin, hw) in [(64, 64, 40), (32, 32, 40), (128, 128, 20)] {
                    let image = fill(cin * hw * hw, 3);
                    let weight = fill(cout * cin * 9, 4);
                    let packed = PackedA::new(kernel, MatRef::row_major(&weight, cout, cin * 9));
                    let columns = Im2Col::new(&image, (cin, hw, hw), (3, 3), 1, 1);
                    let mut c = vec![0.0; cout * columns.cols()];
                    let secs = with_threads(threads, || {
                        median_seconds(args.runs, args.warmup, || {
                            kernel.matmul(
                                par,
                                Lhs::Packed(&packed),
                                Rhs::Im2Col(&columns),
                                MatMut::row_major(&mut c, cout, hw * hw),
                                &GemmOptions::default(),
                            )
                        })
                    });
                    print_line(
                        kernel.name(),
                        "conv3x3",
                        (cout, hw * hw, cin * 9),
                        threads,
                        secs,
                    );
                }
            }
        }
    }
}

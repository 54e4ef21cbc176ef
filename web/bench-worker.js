// The benchmark page's measuring side: one module Worker per build (rayon's workers spin while
// they wait, and every measured call is synchronous, so nothing runs on the page's thread).
//
// Protocol: every request carries an `id`; the reply echoes it, with type 'done' and the
// fields below, or type 'failed' with { message }.
//   { type: 'start', build, pool }                 -> { buildInfo, kernels }
//   { type: 'gemm', m, n, k, prepacked, threads, repeat }
//                                                   -> { ms: [..], macs, kernel }
//     (prepacked: B packed ahead, so the run is the micro-kernel loop alone)
//   { type: 'peak', repeat }                       -> { ms: [..], macs }
//     (the build's SIMD multiply-add limit on one core, measured now)
//   { type: 'memory', variant, mhsa, size, threads, frames, width, height }
//                                                   -> { ms: [..], bytes: [..] } (after each frame)
//   { type: 'block', kind, dim, grid, threads, repeat }
//                                                   -> { ms: [..], macs }
//   { type: 'model', variant, mhsa, size, threads, repeat }
//                                                   -> { ms: [..], backboneMs: [..], macs, profile }
// `repeat` forward passes are timed back to back, after `settle` untimed ones (0 if absent),
// and the reply counts the untimed passes run (`settled`); the page alternates builds between
// requests.
// `pool` sizes the thread pool once; `threads` limits how many of its threads the kernels use.

const BUILDS = {
  relaxed: () => import('./pkg/dist/threads-relaxed-nb/effyolo.js'),
  simd128: () => import('./pkg/dist/threads-simd-nb/effyolo.js'),
  single: () => import('./pkg/dist/single-simd/effyolo.js'),
};

const THREAD_POOL_TIMEOUT_MS = 20000;

/** The profile steps that belong to the backbone (the rest are the neck and the head). */
const BACKBONE_STEP = /^(stem|stage\d|tap\d)$/;

let glue = null;
const blocks = new Map();
const gemms = new Map();
const detectors = new Map();

/** Steps of the SIMD peak loop per run: 48 multiply-adds each, a few milliseconds in all. */
const PEAK_ITERS = 1 << 20;

/** Products this short are timed in batches: one run is below the clock's resolution. */
const MIN_SAMPLE_MS = 1;

/**
 * The time of one `run()` (which returns its own time in ms): that time when it is at least
 * MIN_SAMPLE_MS, else the mean over back-to-back runs that together last MIN_SAMPLE_MS.
 */
function timeBatch(run) {
  const once = run();
  if (once >= MIN_SAMPLE_MS) return once;
  let count = 0;
  const start = performance.now();
  let elapsed = 0;
  do {
    run();
    count++;
    elapsed = performance.now() - start;
  } while (elapsed < MIN_SAMPLE_MS);
  return elapsed / count;
}

/** Runs `run` `count` times (none when absent) without timing it; returns how many ran. */
function untimed(count, run) {
  let ran = 0;
  for (; ran < (count ?? 0); ran++) run();
  return ran;
}

const handlers = {
  async start({ build, pool }) {
    const load = BUILDS[build];
    if (!load) throw new Error(`unknown build '${build}'`);
    glue = await load();
    await glue.default();
    if (pool > 1) {
      if (typeof glue.initThreadPool !== 'function') throw new Error(`build '${build}' has no thread pool`);
      let timer;
      await Promise.race([
        glue.initThreadPool(pool),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error('the thread pool did not start')), THREAD_POOL_TIMEOUT_MS);
        }),
      ]).finally(() => clearTimeout(timer));
    }
    return { buildInfo: JSON.parse(glue.buildInfo()), kernels: JSON.parse(glue.gemmKernels()) };
  },

  gemm({ m, n, k, prepacked, threads, repeat, settle }) {
    const key = `${m}x${n}x${k}`;
    let gemm = gemms.get(key);
    if (!gemm) {
      gemm = new glue.WasmGemm(undefined, m, n, k);
      gemms.set(key, gemm);
    }
    gemm.setThreads(threads);
    const run = () => gemm.run(Boolean(prepacked));
    const settled = untimed(settle, run);
    const ms = [];
    for (let i = 0; i < repeat; i++) ms.push(timeBatch(run));
    return { ms, settled, macs: gemm.macs(), kernel: gemm.kernel() };
  },

  peak({ repeat, settle }) {
    let macs = 0;
    const run = () => {
      const start = performance.now();
      macs = glue.simdPeak(PEAK_ITERS);
      return performance.now() - start;
    };
    const settled = untimed(settle, run);
    const ms = [];
    for (let i = 0; i < repeat; i++) ms.push(run());
    return { ms, settled, macs };
  },

  // The demo's whole path (RGBA frame -> letterbox -> model -> NMS) on one fixed frame, with
  // the size of the module's memory after every frame.
  memory({ variant, mhsa, size, threads, frames, width, height }) {
    const detector = glue.WasmDetector.synthetic(variant, mhsa ?? undefined);
    try {
      detector.setThreads(threads);
      const rgba = new Uint8Array(width * height * 4);
      for (let i = 0; i < rgba.length; i++) rgba[i] = (i * 2654435761) >>> 24;
      const ms = [];
      const bytes = [];
      for (let f = 0; f < frames; f++) {
        const start = performance.now();
        detector.detect(rgba, width, height, size, size, 0.25, 0.45, 300);
        ms.push(performance.now() - start);
        bytes.push(glue.memoryBytes());
      }
      return { ms, bytes };
    } finally {
      detector.free();
    }
  },

  block({ kind, dim, grid, threads, repeat, settle }) {
    const key = `${kind}/${dim}/${grid}`;
    let block = blocks.get(key);
    if (!block) {
      block = new glue.WasmBlock(kind, dim, grid, grid);
      blocks.set(key, block);
    }
    block.setThreads(threads);
    const settled = untimed(settle, () => block.run());
    const ms = [];
    for (let i = 0; i < repeat; i++) ms.push(block.run());
    return { ms, settled, macs: block.macs() };
  },

  model({ variant, mhsa, size, threads, repeat, settle }) {
    const key = `${variant}/${mhsa ?? ''}`;
    let detector = detectors.get(key);
    if (!detector) {
      detector = glue.WasmDetector.synthetic(variant, mhsa ?? undefined);
      detectors.set(key, detector);
    }
    detector.setThreads(threads);
    const settled = untimed(settle, () => detector.profile(size, size));
    const ms = [];
    const backboneMs = [];
    let profile = null;
    for (let i = 0; i < repeat; i++) {
      profile = JSON.parse(detector.profile(size, size));
      ms.push(profile.find((step) => step.step === 'total').ms);
      backboneMs.push(profile.filter((step) => BACKBONE_STEP.test(step.step)).reduce((sum, step) => sum + step.ms, 0));
    }
    return { ms, backboneMs, settled, macs: JSON.parse(detector.macCount(size, size)), profile };
  },
};

self.addEventListener('message', async ({ data: request }) => {
  const handler = handlers[request?.type];
  if (!handler) return;
  try {
    if (request.type !== 'start' && !glue) throw new Error(`'${request.type}' before 'start'`);
    const reply = await handler(request);
    self.postMessage({ ...reply, type: 'done', id: request.id });
  } catch (error) {
    self.postMessage({ type: 'failed', id: request.id, message: error instanceof Error ? error.message : String(error) });
  }
});

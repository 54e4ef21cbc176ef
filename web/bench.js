// The benchmark page: what the pooling mixer (Meta4D) costs against MHSA (Meta3D), per block
// and for the whole detector, over thread counts and builds, measured in this browser.
//
// URL parameters (all optional; the form writes them back to the URL):
//   builds=relaxed,simd128,single  builds to compare (default: every one this page can run)
//   threads=1,2,4                  kernel thread counts (default 1, 2, 4, … and
//                                  hardwareConcurrency); the single-thread build runs at 1 only
//   runs=20  warmup=3              timed runs after warm-up runs, per row
//   settle=0                       untimed passes right before each timed one, so that it
//                                  starts as a pass in a stream of frames does: its threads and
//                                  cores awake (an idle core of a virtual machine can take
//                                  milliseconds to be scheduled again)
//   blocks=4@320,1@224             block rows as stage@input (the stage's width at the token
//                                  grid input/stride); 1|all for the default set, 0|none for none
//   models=l1:0,l1:1,l1:4,l3,l7    whole-detector rows as variant[:MHSA blocks]; 0|none for none
//   sizes=256,320,416,640          model input sizes
//   gemm=1792x100x448,256x256x256  GEMM rows as MxNxK with each build's best kernel; 1|all for
//                                  the default set, 0|none for none (the default). Each shape
//                                  gives two rows: B packed in the call (as in the model) and
//                                  B packed ahead (the micro-kernel loop alone). With GEMM
//                                  rows, each build's SIMD peak on one core is measured too
//                                  (a "peak" row, timed in the same rounds)
//   memory=500                     frames of the demo's whole path (RGBA frame, letterbox,
//                                  model, NMS) at the first size, per build at the most
//                                  threads, printing wasm memory after them (default 0: off)
//   peak=28.6                      the SIMD128 limit of one core in GMAC/s (8 multiply-adds per
//                                  cycle; 28.6 measured on the 2-core machines this project is
//                                  tested on), for peak_pct
//   run=1                          start at once
//
// Every build gets a Worker of its own. After the warm-up, the timed runs go in rounds: each
// round times every row once on every build, so a slow change of the machine's state (heat,
// other tabs) hits all rows and builds alike. The weights are synthetic: latency does not
// depend on weight values. `peak_pct` is GMAC/s over the SIMD128 limit per core (`peak`)
// times the threads. `measured_peak_pct` is GMAC/s over the build's peak row of the same run
// times the threads: on a shared machine, where other work slows every figure alike, it is
// the steadier of the two.

const $ = (id) => document.getElementById(id);

/** L1's stages: width and stride (the token grid is input / stride). */
const L1_STAGES = [
  { stage: 1, dim: 48, stride: 4 },
  { stage: 2, dim: 96, stride: 8 },
  { stage: 3, dim: 224, stride: 16 },
  { stage: 4, dim: 448, stride: 32 },
];
const DEFAULT_BLOCKS = '1@224,2@224,3@224,4@224,4@320,4@640';
const DEFAULT_MODELS = 'l1:0,l1:1,l1:4';
const DEFAULT_SIZES = '256,320,416,640';
/** The 1x1 convolutions of L1 at 320 as GEMMs (M = out channels, N = pixels, K = in), a 3x3
 * neck convolution (64 x 1600 x 576) and a square. */
const DEFAULT_GEMMS = '192x6400x48,48x6400x192,384x1600x96,96x1600x384,896x400x224,224x400x896,1792x100x448,64x1600x576,256x256x256';
/** Frame size of the memory run (a webcam's). */
const MEMORY_FRAME = { width: 640, height: 480 };
/** The wasm SIMD128 limit of one core, GMAC/s: 8 multiply-adds per cycle (two f32x4 FMA, or two
 * f32x4 mul + two f32x4 add), measured at 28.6 on the 2-core test machines (web/README.md). */
const DEFAULT_PEAK = 28.6;
const BUILD_LABELS = { relaxed: 'relaxed SIMD + threads', simd128: 'SIMD128 + threads', single: 'single thread (SIMD128)' };
const BUILD_COLOURS = { relaxed: '#0b6bcb', simd128: '#d9822b', single: '#2f9e44' };

// ---- what the page can run ----------------------------------------------------------------

function validates(bytes) {
  try {
    return WebAssembly.validate(new Uint8Array(bytes));
  } catch {
    return false;
  }
}

/** The same probes as the package's features.js: one instruction of each feature. */
function detectFeatures() {
  const wasm = typeof WebAssembly === 'object';
  const simd = wasm && validates([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11]);
  const relaxed = wasm && validates([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 15, 1, 13, 0, 65, 1, 253, 15, 65, 2, 253, 15, 253, 128, 2, 11]);
  const crossOriginIsolated = globalThis.crossOriginIsolated === true;
  const threads = wasm && crossOriginIsolated && typeof SharedArrayBuffer === 'function'
    && validates([0, 97, 115, 109, 1, 0, 0, 0, 1, 4, 1, 96, 0, 0, 3, 2, 1, 0, 5, 4, 1, 3, 1, 1, 10, 11, 1, 9, 0, 65, 0, 254, 16, 2, 0, 26, 11]);
  const cores = Math.max(1, navigator.hardwareConcurrency ?? 1);
  const available = [];
  if (simd && relaxed && threads) available.push('relaxed');
  if (simd && threads) available.push('simd128');
  if (simd) available.push('single');
  return { simd, relaxed, threads, crossOriginIsolated, cores, available };
}

// ---- settings -----------------------------------------------------------------------------

function list(text) {
  return String(text ?? '').split(',').map((s) => s.trim()).filter(Boolean);
}

function positiveInts(text, what) {
  return list(text).map((s) => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < 1) throw new Error(`${what}: '${s}' is not a positive integer`);
    return n;
  });
}

/** A URL parameter that counts something (an integer >= 0), `fallback` when absent. */
function countParam(params, name, fallback, what = 'count') {
  const n = Number(params.get(name) ?? fallback);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name}: '${params.get(name)}' is not a ${what}`);
  return n;
}

/** 1, 2, 4, … up to `cores`, and `cores` itself: the range without a row per count on big machines. */
function defaultThreads(cores) {
  const counts = [];
  for (let n = 1; n < cores; n *= 2) counts.push(n);
  counts.push(cores);
  return counts;
}

/** Settings from URL-style parameters; throws on anything it cannot use. */
function parseSettings(params, features) {
  const builds = params.has('builds') ? list(params.get('builds')) : features.available;
  for (const build of builds) {
    if (!(build in BUILD_LABELS)) throw new Error(`builds: unknown build '${build}' (relaxed, simd128, single)`);
  }
  const threads = params.has('threads') ? positiveInts(params.get('threads'), 'threads') : defaultThreads(features.cores);
  const runs = positiveInts(params.get('runs') ?? '20', 'runs')[0];
  const warmup = countParam(params, 'warmup', 3);
  const settle = countParam(params, 'settle', 0);

  let blockText = params.get('blocks') ?? DEFAULT_BLOCKS;
  if (['1', 'all', 'default'].includes(blockText)) blockText = DEFAULT_BLOCKS;
  if (['0', 'none'].includes(blockText)) blockText = '';
  const blocks = list(blockText).map((item) => {
    const match = /^([1-4])@(\d+)$/.exec(item);
    if (!match) throw new Error(`blocks: '${item}' is not stage@input (e.g. 4@320)`);
    const { stage, dim, stride } = L1_STAGES[Number(match[1]) - 1];
    const input = Number(match[2]);
    if (input % stride !== 0) throw new Error(`blocks: input ${input} is not a multiple of stage ${stage}'s stride ${stride}`);
    return { stage, dim, input, grid: input / stride };
  });

  let modelText = params.get('models') ?? DEFAULT_MODELS;
  if (['0', 'none'].includes(modelText)) modelText = '';
  const models = list(modelText).map((item) => {
    const match = /^(l1|l3|l7)(?::(\d+))?$/.exec(item);
    if (!match) throw new Error(`models: '${item}' is not variant[:MHSA blocks] (e.g. l1:4, l7)`);
    return { variant: match[1], mhsa: match[2] === undefined ? null : Number(match[2]) };
  });
  const sizes = positiveInts(params.get('sizes') ?? DEFAULT_SIZES, 'sizes');
  for (const size of sizes) {
    if (size % 32 !== 0) throw new Error(`sizes: ${size} is not a multiple of 32`);
  }

  let gemmText = params.get('gemm') ?? 'none';
  if (['1', 'all', 'default'].includes(gemmText)) gemmText = DEFAULT_GEMMS;
  if (['0', 'none'].includes(gemmText)) gemmText = '';
  const gemms = list(gemmText).map((item) => {
    const match = /^(\d+)x(\d+)x(\d+)$/.exec(item);
    if (!match || match.slice(1).some((d) => Number(d) < 1)) throw new Error(`gemm: '${item}' is not MxNxK (e.g. 1792x100x448)`);
    return { m: Number(match[1]), n: Number(match[2]), k: Number(match[3]) };
  });
  const memory = countParam(params, 'memory', 0, 'frame count');
  if (memory > 0 && !models.length) throw new Error('memory: needs a model (models=l1:1)');
  const peak = Number(params.get('peak') ?? DEFAULT_PEAK);
  if (!(peak > 0)) throw new Error(`peak: '${params.get('peak')}' is not a positive GMAC/s figure`);
  return { builds, threads, runs, warmup, settle, blocks, models, sizes, gemms, memory, peak };
}

/** The settings as URL parameters (the shareable form). */
function settingsQuery(settings) {
  const params = new URLSearchParams({
    builds: settings.builds.join(','),
    threads: settings.threads.join(','),
    runs: String(settings.runs),
    warmup: String(settings.warmup),
    settle: String(settings.settle),
    blocks: settings.blocks.map((b) => `${b.stage}@${b.input}`).join(',') || 'none',
    models: settings.models.map((m) => (m.mhsa === null ? m.variant : `${m.variant}:${m.mhsa}`)).join(',') || 'none',
    sizes: settings.sizes.join(','),
    gemm: settings.gemms.map((g) => `${g.m}x${g.n}x${g.k}`).join(',') || 'none',
    memory: String(settings.memory),
    peak: String(settings.peak),
  });
  return params.toString().replaceAll('%2C', ',').replaceAll('%40', '@').replaceAll('%3A', ':');
}

// ---- workers ------------------------------------------------------------------------------

/** A Worker running one build, with request/reply by id. */
function startBuildWorker(build) {
  const worker = new Worker(new URL('./bench-worker.js', import.meta.url), { type: 'module', name: `bench-${build}` });
  const pending = new Map();
  let next = 0;
  worker.addEventListener('message', ({ data }) => {
    const waiter = pending.get(data.id);
    if (!waiter) return;
    pending.delete(data.id);
    if (data.type === 'done') waiter.resolve(data);
    else waiter.reject(new Error(`${build}: ${data.message}`));
  });
  worker.addEventListener('error', (event) => {
    for (const waiter of pending.values()) waiter.reject(new Error(`${build}: ${event.message ?? 'worker failed'}`));
    pending.clear();
  });
  return {
    build,
    request(message) {
      const id = next++;
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject });
        worker.postMessage({ ...message, id });
      });
    },
    terminate: () => worker.terminate(),
  };
}

// ---- statistics ---------------------------------------------------------------------------

function quantile(values, q) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}
const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const round = (x, digits = 3) => (Number.isFinite(x) ? Number(x.toFixed(digits)) : null);
/** Four significant digits: MAC counts and rates span 1e-5 (a tiny GEMM) to 1e2. */
const significant = (x) => (Number.isFinite(x) ? Number(x.toPrecision(4)) : null);

function summarise(ms, macs) {
  const medianMs = median(ms);
  return {
    median_ms: round(medianMs),
    p95_ms: round(quantile(ms, 0.95)),
    gmac: significant(macs / 1e9),
    gmac_per_s: significant(macs / 1e9 / (medianMs / 1000)),
  };
}

// ---- the run ------------------------------------------------------------------------------

/**
 * Measures every row (a case at a thread count): `warmup` runs of each row on each build, then
 * `runs` rounds, each timing every row once on every build. Calls `progress(done, total, text)`.
 */
async function measure(settings, workers, progress) {
  const results = [];
  const jobs = [];
  if (settings.gemms.length) jobs.push({ kind: 'peak' });
  for (const g of settings.gemms) {
    for (const bPacked of ['per call', 'ahead']) jobs.push({ kind: 'gemm', ...g, bPacked });
  }
  for (const b of settings.blocks) {
    for (const kind of ['meta4d', 'meta3d']) jobs.push({ kind: 'block', mixer: kind, ...b });
  }
  for (const m of settings.models) {
    for (const size of settings.sizes) jobs.push({ kind: 'model', ...m, size });
  }
  const plan = [];
  for (const job of jobs) {
    // The peak is a one-core figure.
    for (const threads of job.kind === 'peak' ? [1] : settings.threads) {
      const builds = workers.filter((w) => w.build !== 'single' || threads === 1);
      if (builds.length) plan.push({ job, threads, builds });
    }
  }
  const entries = plan.map(({ job, threads, builds }) => ({
    job, threads, builds,
    label: `${jobLabel(job)}, ${threads} thread${threads > 1 ? 's' : ''}`,
    message: jobMessage(job, threads),
    samples: new Map(builds.map((w) => [w.build, { ms: [], settled: 0, backboneMs: [], profiles: [], last: null }])),
  }));
  const total = entries.length * (settings.runs + (settings.warmup > 0 ? 1 : 0));
  let done = 0;
  if (settings.warmup > 0) {
    for (const entry of entries) {
      progress(done, total, `warm-up: ${entry.label}`);
      for (const w of entry.builds) await w.request({ ...entry.message, repeat: settings.warmup });
      done++;
    }
  }
  // Round robin: one run of every row on every build per round, so slow drifts of the
  // machine's state (heat, other work) spread over all rows alike.
  for (let r = 0; r < settings.runs; r++) {
    for (const entry of entries) {
      progress(done, total, `run ${r + 1}/${settings.runs}: ${entry.label}`);
      for (const w of entry.builds) {
        const reply = await w.request({ ...entry.message, repeat: 1, settle: settings.settle });
        const s = entry.samples.get(w.build);
        s.settled += reply.settled;
        s.ms.push(...reply.ms);
        if (reply.backboneMs) s.backboneMs.push(...reply.backboneMs);
        if (reply.profile) s.profiles.push(reply.profile);
        s.last = reply;
      }
      done++;
    }
  }
  for (const { job, threads, builds, samples } of entries) {
    for (const w of builds) {
      const { ms, settled, backboneMs, profiles, last } = samples.get(w.build);
      if (job.kind === 'peak') {
        results.push({
          kind: 'peak', kernel: 'peak', build: w.build, threads, runs: ms.length, settled, ...summarise(ms, last.macs),
        });
      } else if (job.kind === 'gemm') {
        results.push({
          kind: 'gemm', kernel: last.kernel, m: job.m, n: job.n, k: job.k, b_packed: job.bPacked,
          build: w.build, threads, runs: ms.length, settled, ...summarise(ms, last.macs),
        });
      } else if (job.kind === 'block') {
        results.push({
          kind: 'block', mixer: job.mixer, stage: job.stage, dim: job.dim, input: job.input, grid: job.grid,
          build: w.build, threads, runs: ms.length, settled, ...summarise(ms, last.macs),
        });
      } else {
        const macs = last.macs;
        results.push({
          kind: 'model', model: job.variant, variant: job.variant, mhsa: job.mhsa, size: job.size,
          build: w.build, threads, runs: ms.length, settled, ...summarise(ms, macs.total),
          backbone_gmac: round(macs.backbone / 1e9, 4),
          backbone_mac_share: round(macs.backbone / macs.total),
          backbone_share: round(median(backboneMs) / median(ms)),
          // Per step, the median over the timed runs.
          breakdown: last.profile.map(({ step }, i) => ({ step, ms: round(median(profiles.map((p) => p[i].ms))) })),
        });
      }
    }
  }
  for (const row of results) row.peak_pct = round((100 * row.gmac_per_s) / (settings.peak * row.threads), 1);
  for (const row of results) {
    const peak = results.find((r) => r.kind === 'peak' && r.build === row.build);
    row.measured_peak_pct = peak && row.kind !== 'peak'
      ? round((100 * row.gmac_per_s) / (peak.gmac_per_s * row.threads), 1)
      : null;
  }
  // The MHSA/pool ratio on both rows of each pair.
  for (const row of results) {
    if (row.kind !== 'block') continue;
    const pair = (mixer) => results.find((r) => r.kind === 'block' && r.mixer === mixer && r.stage === row.stage
      && r.input === row.input && r.build === row.build && r.threads === row.threads);
    const pool = pair('meta4d');
    const mhsa = pair('meta3d');
    row.mhsa_pool_ratio = pool && mhsa ? round(mhsa.median_ms / pool.median_ms) : null;
    row.mhsa_pool_mac_ratio = pool && mhsa ? round(mhsa.gmac / pool.gmac) : null;
  }
  progress(total, total, 'done');
  // Pool and MHSA rows of the same case, build and thread count next to each other.
  const buildOrder = (b) => Object.keys(BUILD_LABELS).indexOf(b);
  const caseIndex = (r) => jobs.findIndex((j) => j.kind === r.kind && (r.kind === 'peak' || r.kind === 'gemm'
    ? j.m === r.m && j.n === r.n && j.k === r.k && j.bPacked === r.b_packed
    : r.kind === 'block'
      ? j.stage === r.stage && j.input === r.input
      : j.variant === r.variant && j.mhsa === r.mhsa && j.size === r.size));
  return results.sort((a, b) => caseIndex(a) - caseIndex(b) || a.threads - b.threads
    || buildOrder(a.build) - buildOrder(b.build) || (a.mixer === 'meta3d') - (b.mixer === 'meta3d'));
}

function jobLabel(job) {
  if (job.kind === 'peak') return 'SIMD peak, one core';
  if (job.kind === 'gemm') return `GEMM ${job.m}x${job.n}x${job.k}, B packed ${job.bPacked}`;
  if (job.kind === 'block') return `${job.mixer} stage ${job.stage} (${job.dim} wide, grid ${job.grid})`;
  return `${job.variant}${job.mhsa === null ? '' : ` with ${job.mhsa} MHSA`} at ${job.size}`;
}

function jobMessage(job, threads) {
  if (job.kind === 'peak') return { type: 'peak' };
  if (job.kind === 'gemm') {
    return { type: 'gemm', m: job.m, n: job.n, k: job.k, prepacked: job.bPacked === 'ahead', threads };
  }
  if (job.kind === 'block') return { type: 'block', kind: job.mixer, dim: job.dim, grid: job.grid, threads };
  return { type: 'model', variant: job.variant, mhsa: job.mhsa, size: job.size, threads };
}

/**
 * `frames` detections of one fixed frame per build, at the build's most threads, with the
 * wasm memory after each: the steady state must not grow.
 */
async function measureMemory(settings, workers, progress) {
  const model = settings.models[0];
  const size = settings.sizes[0];
  const rows = [];
  for (const [i, w] of workers.entries()) {
    const threads = w.build === 'single' ? 1 : Math.max(...settings.threads);
    progress(i, workers.length, `memory: ${settings.memory} frames on ${w.build}, ${threads} thread${threads > 1 ? 's' : ''}`);
    const reply = await w.request({
      type: 'memory', variant: model.variant, mhsa: model.mhsa, size, threads,
      frames: settings.memory, ...MEMORY_FRAME,
    });
    const mb = (bytes) => round(bytes / 2 ** 20, 2);
    const { bytes, ms } = reply;
    rows.push({
      kind: 'memory', model: model.variant, variant: model.variant, mhsa: model.mhsa, size,
      frame: `${MEMORY_FRAME.width}x${MEMORY_FRAME.height}`, build: w.build, threads, frames: bytes.length,
      wasm_mb_after_first: mb(bytes[0]),
      wasm_mb_after_10: mb(bytes[Math.min(9, bytes.length - 1)]),
      wasm_mb_end: mb(bytes[bytes.length - 1]),
      growth_after_10_mb: mb(bytes[bytes.length - 1] - bytes[Math.min(9, bytes.length - 1)]),
      frames_that_grew: bytes.filter((b, f) => f > 0 && b > bytes[f - 1]).length,
      median_ms: round(median(ms)),
    });
  }
  progress(workers.length, workers.length, 'done');
  return rows;
}

// ---- output -------------------------------------------------------------------------------

const CSV_COLUMNS = [
  'kind', 'kernel', 'm', 'n', 'k', 'b_packed', 'mixer', 'stage', 'dim', 'input', 'grid', 'variant', 'mhsa', 'size', 'build',
  'threads', 'runs', 'median_ms', 'p95_ms', 'gmac', 'gmac_per_s', 'peak_pct', 'measured_peak_pct', 'mhsa_pool_ratio', 'mhsa_pool_mac_ratio',
  'backbone_gmac', 'backbone_mac_share', 'backbone_share', 'frames', 'wasm_mb_after_first', 'wasm_mb_end',
  'growth_after_10_mb',
];

function toCsv(results) {
  const cell = (v) => {
    if (v === undefined || v === null) return '';
    const s = String(v);
    return /[",\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
  };
  return [CSV_COLUMNS.join(','), ...results.map((r) => CSV_COLUMNS.map((c) => cell(r[c])).join(','))].join('\n') + '\n';
}

function rowName(r) {
  if (r.kind === 'peak') return 'SIMD peak (one core)';
  if (r.kind === 'gemm') return `GEMM ${r.m}×${r.n}×${r.k} (${r.kernel}, B ${r.b_packed})`;
  return r.kind === 'block'
    ? `${r.mixer === 'meta3d' ? 'MHSA' : 'pool'} s${r.stage} ${r.dim}×${r.grid}²`
    : `${r.variant.toUpperCase()}${r.mhsa === null ? '' : ` ${r.mhsa} MHSA`} @${r.size}`;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  for (const c of children) node.append(c);
  return node;
}

function fmt(x, digits = 2) {
  return x === null || x === undefined ? '–' : Number(x).toFixed(digits);
}

function renderTables(results) {
  const gemms = results.filter((r) => r.kind === 'peak' || r.kind === 'gemm');
  const blocks = results.filter((r) => r.kind === 'block');
  const models = results.filter((r) => r.kind === 'model');
  const memory = results.filter((r) => r.kind === 'memory');
  $('gemm-rows').replaceChildren(...gemms.map((r) => el('tr', { 'data-kind': r.kind },
    el('td', {}, r.kind === 'peak' ? 'SIMD peak' : `${r.m}×${r.n}×${r.k}`), el('td', {}, r.b_packed ?? '–'),
    el('td', {}, r.kernel), el('td', {}, r.build), el('td', {}, String(r.threads)),
    el('td', {}, fmt(r.median_ms, 3)), el('td', {}, fmt(r.gmac_per_s, 1)), el('td', {}, fmt(r.gmac_per_s / r.threads, 1)),
    el('td', {}, fmt(r.peak_pct, 1)), el('td', {}, fmt(r.measured_peak_pct, 1)))));
  $('gemm-results').hidden = gemms.length === 0;
  $('memory-rows').replaceChildren(...memory.map((r) => el('tr', {},
    el('td', {}, r.variant.toUpperCase()), el('td', {}, String(r.size)), el('td', {}, r.frame), el('td', {}, r.build),
    el('td', {}, String(r.threads)), el('td', {}, String(r.frames)), el('td', {}, fmt(r.wasm_mb_after_first, 2)),
    el('td', {}, fmt(r.wasm_mb_after_10, 2)), el('td', {}, fmt(r.wasm_mb_end, 2)), el('td', {}, fmt(r.growth_after_10_mb, 2)),
    el('td', {}, fmt(r.median_ms)))));
  $('memory-results').hidden = memory.length === 0;
  const blockBody = $('block-rows');
  blockBody.replaceChildren(...blocks.map((r) => el('tr', { 'data-mixer': r.mixer },
    el('td', {}, r.mixer === 'meta3d' ? 'Meta3D (MHSA)' : 'Meta4D (pool)'),
    el('td', {}, String(r.stage)), el('td', {}, String(r.dim)), el('td', {}, `${r.grid}×${r.grid} (${r.input})`),
    el('td', {}, r.build), el('td', {}, String(r.threads)),
    el('td', {}, fmt(r.median_ms, 3)), el('td', {}, fmt(r.p95_ms, 3)),
    el('td', {}, fmt(r.gmac, 4)), el('td', {}, fmt(r.gmac_per_s, 1)), el('td', {}, fmt(r.peak_pct, 1)),
    el('td', { class: 'ratio' }, r.mhsa_pool_ratio === null ? '–' : `${fmt(r.mhsa_pool_ratio)}× (MACs ${fmt(r.mhsa_pool_mac_ratio)}×)`))));
  $('block-results').hidden = blocks.length === 0;

  $('model-rows').replaceChildren(...models.map((r) => el('tr', {},
    el('td', {}, r.variant.toUpperCase()), el('td', {}, r.mhsa === null ? 'published' : String(r.mhsa)),
    el('td', {}, String(r.size)), el('td', {}, r.build), el('td', {}, String(r.threads)),
    el('td', {}, fmt(r.median_ms)), el('td', {}, fmt(r.p95_ms)),
    el('td', {}, fmt(r.gmac, 3)), el('td', {}, fmt(r.gmac_per_s, 1)), el('td', {}, fmt(r.peak_pct, 1)),
    el('td', {}, `${fmt(100 * r.backbone_share, 0)}% (MACs ${fmt(100 * r.backbone_mac_share, 0)}%)`))));
  $('model-results').hidden = models.length === 0;

  const first = models[0];
  if (first) {
    const total = first.breakdown.find((s) => s.step === 'total').ms;
    $('breakdown-title').textContent = `Per-step breakdown (median per step): ${rowName(first)}, ${first.build}, ${first.threads} thread${first.threads > 1 ? 's' : ''}`;
    $('breakdown-rows').replaceChildren(...first.breakdown.map((s) => el('tr', {},
      el('td', {}, s.step), el('td', {}, fmt(s.ms, 3)), el('td', {}, `${fmt((100 * s.ms) / total, 1)}%`))));
  }
  $('breakdown').hidden = !first;
}

/** Horizontal bars of the median per row, one colour per build (inline SVG). */
function renderChart(results) {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = $('chart');
  svg.replaceChildren();
  if (!results.length) return;
  const labelWidth = 230;
  const barHeight = 14;
  const gap = 4;
  const width = 900;
  const groups = [['gemm', 'GEMM (ms, median)'], ['block', 'Blocks (ms, median)'], ['model', 'Whole detector (ms, median)']];
  let y = 0;
  const add = (tag, attrs, text) => {
    const node = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    svg.append(node);
    return node;
  };
  for (const [kind, title] of groups) {
    const rows = results.filter((r) => r.kind === kind);
    if (!rows.length) continue;
    const max = Math.max(...rows.map((r) => r.median_ms));
    y += 18;
    add('text', { x: 0, y, 'font-weight': 'bold', fill: 'currentColor' }, title);
    y += 6;
    for (const r of rows) {
      const w = Math.max(1, ((width - labelWidth - 70) * r.median_ms) / max);
      add('text', { x: labelWidth - 6, y: y + barHeight - 3, 'text-anchor': 'end', 'font-size': 11, fill: 'currentColor' },
        `${rowName(r)} · ${r.build} · ${r.threads}t`);
      add('rect', { x: labelWidth, y, width: w, height: barHeight, fill: BUILD_COLOURS[r.build] });
      add('text', { x: labelWidth + w + 4, y: y + barHeight - 3, 'font-size': 11, fill: 'currentColor' }, fmt(r.median_ms, 2));
      y += barHeight + gap;
    }
  }
  svg.setAttribute('viewBox', `0 0 ${width} ${y + 4}`);
  svg.setAttribute('height', String(y + 4));
}

function download(name, type, text) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = el('a', { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

// ---- the page -----------------------------------------------------------------------------

const features = detectFeatures();
const params = new URLSearchParams(location.search);
let settings = null;
let report = null;
let resolveDone;
/** For scripts (the command-line runner, the tests): resolves to the report or { error }. */
window.effyoloBench = { done: new Promise((resolve) => { resolveDone = resolve; }), report: null };

function showError(text) {
  $('error').textContent = text;
  $('error').hidden = !text;
}

const FORM_KEYS = ['threads', 'runs', 'warmup', 'settle', 'blocks', 'models', 'sizes', 'gemm', 'memory', 'peak'];

function fillForm(s) {
  for (const input of document.querySelectorAll('input[name="build"]')) {
    input.checked = s.builds.includes(input.value);
    input.disabled = !features.available.includes(input.value);
  }
  const query = new URLSearchParams(settingsQuery(s));
  for (const key of FORM_KEYS) $(key).value = query.get(key);
}

function formParams() {
  const p = new URLSearchParams();
  p.set('builds', [...document.querySelectorAll('input[name="build"]:checked')].map((i) => i.value).join(','));
  for (const key of FORM_KEYS) p.set(key, $(key).value);
  return p;
}

async function run() {
  showError('');
  try {
    settings = parseSettings(formParams(), features);
    const missing = settings.builds.filter((b) => !features.available.includes(b));
    if (missing.length) {
      throw new Error(`this page cannot run: ${missing.join(', ')} (available: ${features.available.join(', ') || 'none'})`);
    }
    if (!settings.builds.length) throw new Error('choose at least one build');
  } catch (error) {
    showError(error.message);
    resolveDone({ error: error.message });
    return;
  }
  history.replaceState(null, '', `?${settingsQuery(settings)}`);
  $('run').disabled = true;
  $('export').hidden = true;
  const workers = [];
  const started = performance.now();
  try {
    const pool = Math.max(...settings.threads);
    const buildInfo = {};
    for (const build of settings.builds) {
      $('status').textContent = `Starting ${BUILD_LABELS[build]}…`;
      const worker = startBuildWorker(build);
      workers.push(worker);
      const started = await worker.request({ type: 'start', build, pool: build === 'single' ? 1 : pool });
      buildInfo[build] = { ...started.buildInfo, kernels: started.kernels };
    }
    const progress = $('progress');
    const onProgress = (done, total, text) => {
      progress.max = total;
      progress.value = done;
      $('status').textContent = done < total ? `Measuring ${text} (${done + 1}/${total})…` : '';
    };
    const results = await measure(settings, workers, onProgress);
    if (settings.memory > 0) results.push(...await measureMemory(settings, workers, onProgress));
    report = {
      environment: environment(),
      settings: { ...settings, query: settingsQuery(settings) },
      buildInfo,
      seconds: round((performance.now() - started) / 1000, 1),
      note: 'synthetic weights: latency does not depend on weight values',
      results,
    };
    renderTables(results);
    renderChart(results);
    $('status').textContent = `Done in ${report.seconds} s: ${results.length} rows.`;
    $('export').hidden = false;
    window.effyoloBench.report = report;
    resolveDone(report);
  } catch (error) {
    showError(`The benchmark failed: ${error.message}`);
    resolveDone({ error: error.message });
  } finally {
    for (const w of workers) w.terminate();
    $('run').disabled = false;
  }
}

function environment() {
  return {
    userAgent: navigator.userAgent,
    cores: features.cores,
    crossOriginIsolated: features.crossOriginIsolated,
    builds: features.available,
  };
}

function init() {
  const env = environment();
  $('environment').textContent = `${env.userAgent} · ${env.cores} logical cores · crossOriginIsolated: ${env.crossOriginIsolated}`
    + ` · builds available: ${env.builds.map((b) => BUILD_LABELS[b]).join(', ') || 'none'}`;
  if (!features.threads) {
    $('notice').textContent = features.crossOriginIsolated
      ? 'This browser cannot share WebAssembly memory between threads: only the single-thread build runs.'
      : 'This page is not cross-origin isolated (COOP/COEP headers missing): only the single-thread build runs.';
    $('notice').hidden = false;
  }
  try {
    settings = parseSettings(params, features);
    fillForm(settings);
  } catch (error) {
    fillForm(parseSettings(new URLSearchParams(), features));
    showError(`URL parameters: ${error.message}`);
    resolveDone({ error: error.message });
    return;
  }
  $('run').addEventListener('click', run);
  const copy = (text, what) => navigator.clipboard.writeText(text).then(
    () => { $('status').textContent = `${what} copied.`; },
    (error) => showError(`Could not copy ${what}: ${error.message}`),
  );
  $('copy-json').addEventListener('click', () => copy(JSON.stringify(report, null, 2), 'JSON'));
  $('copy-csv').addEventListener('click', () => copy(toCsv(report.results), 'CSV'));
  $('download-json').addEventListener('click', () => download('effyolo-bench.json', 'application/json', JSON.stringify(report, null, 2)));
  $('download-csv').addEventListener('click', () => download('effyolo-bench.csv', 'text/csv', toCsv(report.results)));
  $('run').disabled = false;
  window.effyoloBench.toCsv = () => toCsv(report?.results ?? []);
  if (params.get('run') === '1') run();
}

init();

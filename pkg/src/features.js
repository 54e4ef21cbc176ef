// What the page can run, and which build that makes the fastest.
//
// Each SIMD flavour is its own binary: a module that contains relaxed-SIMD instructions fails
// validation where they are unsupported, so the choice is made before loading, by validating
// tiny modules that use one instruction of each feature.

/** (func (result v128) i32.const 0 i8x16.splat i8x16.popcnt) */
const SIMD_PROBE = [
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11,
];
/** (func (result v128) i32.const 1 i8x16.splat i32.const 2 i8x16.splat i8x16.relaxed_swizzle) */
const RELAXED_SIMD_PROBE = [
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 15, 1, 13, 0, 65, 1, 253, 15, 65, 2, 253,
  15, 253, 128, 2, 11,
];
/** (memory 1 1 shared) (func i32.const 0 i32.atomic.load drop) */
const THREADS_PROBE = [
  0, 97, 115, 109, 1, 0, 0, 0, 1, 4, 1, 96, 0, 0, 3, 2, 1, 0, 5, 4, 1, 3, 1, 1, 10, 11, 1, 9, 0, 65, 0, 254, 16,
  2, 0, 26, 11,
];

function validates(bytes) {
  try {
    return WebAssembly.validate(new Uint8Array(bytes));
  } catch {
    return false;
  }
}

/**
 * What this page can run.
 * @returns {import('./index.js').Features} (declared in index.d.ts)
 */
export function detectFeatures() {
  const webAssembly = typeof WebAssembly === 'object' && typeof WebAssembly.validate === 'function';
  const crossOriginIsolated = globalThis.crossOriginIsolated === true;
  const sharedMemory = typeof SharedArrayBuffer === 'function';
  return {
    webAssembly,
    simd: webAssembly && validates(SIMD_PROBE),
    relaxedSimd: webAssembly && validates(RELAXED_SIMD_PROBE),
    crossOriginIsolated,
    // Shared memory is only handed out on cross-origin isolated pages.
    threads: webAssembly && crossOriginIsolated && sharedMemory && validates(THREADS_PROBE),
    hardwareConcurrency: Math.max(1, globalThis.navigator?.hardwareConcurrency ?? 1),
  };
}

/** Most worker threads `threads: 'auto'` asks for: beyond this the model's layers are too small to split. */
export const MAX_AUTO_THREADS = 8;

/**
 * The fastest build for `features` given the `threads` option ('auto' or a count).
 * @returns {{ build: 'threads-relaxed' | 'threads-simd' | 'single-simd', threads: number, fallback: string | null }}
 *   `fallback` says why threads were wanted but cannot be used, otherwise null.
 */
export function chooseBuild(features, threads = 'auto') {
  if (!features.webAssembly || !features.simd) {
    return null;
  }
  let wanted;
  if (threads === 'auto') {
    wanted = Math.min(features.hardwareConcurrency, MAX_AUTO_THREADS);
  } else if (Number.isInteger(threads) && threads >= 0) {
    wanted = Math.max(1, threads);
  } else {
    throw new TypeError(`threads must be 'auto' or a non-negative integer, got ${String(threads)}`);
  }
  if (wanted > 1 && !features.threads) {
    const fallback = features.crossOriginIsolated
      ? 'this browser cannot share WebAssembly memory between threads'
      : 'the page is not cross-origin isolated (COOP/COEP headers missing)';
    return { build: 'single-simd', threads: 1, fallback };
  }
  if (wanted === 1) {
    return { build: 'single-simd', threads: 1, fallback: null };
  }
  return { build: features.relaxedSimd ? 'threads-relaxed' : 'threads-simd', threads: wanted, fallback: null };
}

// The inference Worker for pages built with a bundler (the package's "." entry): the threaded
// builds use wasm-bindgen-rayon's bundler worker helper.
import { serveDetector } from './worker-core.js';

serveDetector({
  'threads-relaxed': () => import('../dist/threads-relaxed/effyolo.js'),
  'threads-simd': () => import('../dist/threads-simd/effyolo.js'),
  'single-simd': () => import('../dist/single-simd/effyolo.js'),
});

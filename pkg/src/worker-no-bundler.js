// The inference Worker for plain ES-module pages (the "./no-bundler" entry): the threaded
// builds use wasm-bindgen-rayon's bundler-free worker helper.
import { serveDetector } from './worker-core.js';

serveDetector({
  'threads-relaxed': () => import('../dist/threads-relaxed-nb/effyolo.js'),
  'threads-simd': () => import('../dist/threads-simd-nb/effyolo.js'),
  'single-simd': () => import('../dist/single-simd/effyolo.js'),
});

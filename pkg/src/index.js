// effyolo for pages built with a bundler (Vite, webpack, Rollup...). Pages loaded as plain ES
// modules import 'effyolo/no-bundler' instead: the threaded builds need a worker helper that
// matches how the page is served. See README.md.
import { createDetectorWith } from './detector.js';

export { EffyoloError } from './detector.js';
export { detectFeatures } from './features.js';

/** Starts a detector: see createDetector in index.d.ts. */
export function createDetector(options) {
  // The literal `new Worker(new URL(...), { type: 'module' })` is what bundlers look for.
  return createDetectorWith(
    () => new Worker(new URL('./worker.js', import.meta.url), { type: 'module', name: 'effyolo' }),
    options,
  );
}

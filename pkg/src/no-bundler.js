// effyolo for pages loaded as plain ES modules (an import map or a relative path, no bundler).
// Bundled pages import 'effyolo' instead. See README.md.
import { createDetectorWith } from './detector.js';

export { EffyoloError } from './detector.js';
export { detectFeatures } from './features.js';

/** Starts a detector: see createDetector in index.d.ts. */
export function createDetector(options) {
  return createDetectorWith(
    () => new Worker(new URL('./worker-no-bundler.js', import.meta.url), { type: 'module', name: 'effyolo' }),
    options,
  );
}

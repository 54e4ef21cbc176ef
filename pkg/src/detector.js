// The page side of the detector: picks a build, starts the inference Worker, downloads the
// weights and turns frames into messages. Nothing here blocks the main thread: pixels are read
// in the Worker (ImageBitmaps are transferred, not copied), inference runs there too.

import { chooseBuild, detectFeatures } from './features.js';

/** An error with a machine-readable `code` (see index.d.ts for the list). */
export class EffyoloError extends Error {
  constructor(code, message, options) {
    super(message, options);
    this.name = 'EffyoloError';
    this.code = code;
  }
}

const DEFAULTS = { size: 320, threads: 'auto', conf: 0.25, iou: 0.45, maxDet: 300 };

/**
 * createDetector for an entry point: `spawnWorker()` returns that entry's inference Worker.
 * @param {() => Worker} spawnWorker
 * @param {import('./index.js').DetectorOptions} options (declared in index.d.ts)
 */
export async function createDetectorWith(spawnWorker, options) {
  const settings = { ...DEFAULTS, ...options };
  if (settings.weights == null) {
    throw new TypeError('createDetector: the weights option (URL or bytes) is required');
  }
  const defaults = detectOptions(settings, DEFAULTS);
  const features = detectFeatures();
  const plan = chooseBuild(features, settings.threads);
  if (!plan) {
    throw new EffyoloError(
      'unsupported',
      features.webAssembly
        ? 'this browser does not support WebAssembly SIMD (Chrome 91+, Firefox 89+, Safari 16.4+ do)'
        : 'this browser does not support WebAssembly',
    );
  }

  // Download while the runtime starts.
  const weights = fetchWeights(settings.weights, settings.onProgress);
  weights.catch(() => {});

  let fallback = plan.fallback;
  let session;
  try {
    session = await Session.start(spawnWorker, plan);
  } catch (error) {
    if (plan.threads === 1 || error.code === 'worker') {
      throw error;
    }
    // Threads can fail to start (no memory for the shared heap on a phone, a worker blocked
    // by the page's policy): a fresh Worker with the single-threaded build still works.
    fallback = `threads failed to start: ${error.message}`;
    session = await Session.start(spawnWorker, { build: 'single-simd', threads: 1 });
  }

  try {
    const bytes = await weights;
    const { model } = await session.request({ type: 'load', weights: bytes }, [bytes]);
    return new Detector(session, {
      build: session.build,
      simd: session.buildInfo.simd,
      threads: session.threads,
      crossOriginIsolated: features.crossOriginIsolated,
      fallback,
      model,
    }, defaults);
  } catch (error) {
    session.close();
    throw error;
  }
}

class Detector {
  #session;
  #info;
  #defaults;

  constructor(session, info, defaults) {
    this.#session = session;
    this.#info = Object.freeze(info);
    this.#defaults = defaults;
  }

  info() {
    return this.#info;
  }

  async detect(source, options = {}) {
    const { size, conf, iou, maxDet } = detectOptions(options, this.#defaults);
    const { frame, transfer } = await toFrame(source);
    const reply = await this.#session.request({ type: 'detect', frame, size, conf, iou, maxDet }, transfer);
    const names = this.#info.model.classNames;
    const boxes = reply.boxes;
    const detections = [];
    for (let i = 0; i + 6 <= boxes.length; i += 6) {
      const classId = boxes[i + 5];
      detections.push({
        x1: boxes[i],
        y1: boxes[i + 1],
        x2: boxes[i + 2],
        y2: boxes[i + 3],
        score: boxes[i + 4],
        classId,
        label: names[classId] ?? `class ${classId}`,
      });
    }
    return detections;
  }

  dispose() {
    this.#session.close();
  }
}

/** Validated detect options, missing ones taken from `defaults`. */
function detectOptions(options, defaults) {
  const size = options.size ?? defaults.size;
  const [h, w] = typeof size === 'number' ? [size, size] : Array.isArray(size) ? size : [NaN, NaN];
  if (![h, w].every((s) => Number.isInteger(s) && s > 0)) {
    throw new TypeError(`size must be a positive integer or [height, width], got ${JSON.stringify(size)}`);
  }
  const unit = (name) => {
    const value = options[name] ?? defaults[name];
    if (!(typeof value === 'number' && value >= 0 && value <= 1)) {
      throw new TypeError(`${name} must be a number in [0, 1], got ${String(value)}`);
    }
    return value;
  };
  const maxDet = options.maxDet ?? defaults.maxDet;
  if (!(Number.isInteger(maxDet) && maxDet > 0)) {
    throw new TypeError(`maxDet must be a positive integer, got ${String(maxDet)}`);
  }
  return { size: [h, w], conf: unit('conf'), iou: unit('iou'), maxDet };
}

/** A frame message for the Worker and what to transfer with it. */
async function toFrame(source) {
  if (typeof ImageData !== 'undefined' && source instanceof ImageData) {
    const data = source.data.slice();
    return { frame: { data, width: source.width, height: source.height }, transfer: [data.buffer] };
  }
  if (typeof HTMLVideoElement !== 'undefined' && source instanceof HTMLVideoElement) {
    if (source.readyState < HTMLMediaElement.HAVE_CURRENT_DATA || source.videoWidth === 0) {
      throw new EffyoloError('input', 'the video has no frame yet (wait for its loadeddata event)');
    }
  }
  const drawable = ['ImageBitmap', 'HTMLVideoElement', 'HTMLCanvasElement', 'HTMLImageElement', 'OffscreenCanvas', 'Blob']
    .some((name) => typeof globalThis[name] === 'function' && source instanceof globalThis[name]);
  if (!drawable) {
    throw new TypeError('detect: source must be ImageData, ImageBitmap, a video, canvas or image element, or a Blob');
  }
  // A copy the Worker owns: the caller's bitmap or canvas stays usable. Image files are
  // decoded without colour management, as the command-line tool does.
  const options = source instanceof Blob ? { colorSpaceConversion: 'none' } : undefined;
  let bitmap;
  try {
    bitmap = await createImageBitmap(source, options);
  } catch (error) {
    throw new EffyoloError('input', `the source could not be read as an image: ${error.message}`, { cause: error });
  }
  return { frame: bitmap, transfer: [bitmap] };
}

/** The weights as an ArrayBuffer this package owns, reporting download progress. */
async function fetchWeights(weights, onProgress) {
  const report = (loaded, total) => {
    try {
      onProgress?.({ loaded, total });
    } catch (error) {
      // A failing progress callback must not abort the download.
      setTimeout(() => { throw error; });
    }
  };
  if (weights instanceof ArrayBuffer || ArrayBuffer.isView(weights)) {
    const view = weights instanceof ArrayBuffer ? new Uint8Array(weights) : new Uint8Array(weights.buffer, weights.byteOffset, weights.byteLength);
    const copy = view.slice().buffer;
    report(copy.byteLength, copy.byteLength);
    return copy;
  }
  if (typeof weights !== 'string' && !(weights instanceof URL)) {
    throw new TypeError('weights must be a URL (string or URL) or an ArrayBuffer / typed array');
  }
  const url = String(weights);
  let response;
  try {
    response = await fetch(url);
  } catch (error) {
    throw new EffyoloError('weights', `the weights could not be downloaded from ${url}: ${error.message}`, { cause: error });
  }
  if (!response.ok) {
    throw new EffyoloError('weights', `the weights could not be downloaded from ${url}: HTTP ${response.status} ${response.statusText}`.trim());
  }
  const header = Number(response.headers.get('content-length'));
  const encoded = response.headers.get('content-encoding');
  const total = Number.isFinite(header) && header > 0 && !encoded ? header : null;
  const chunks = [];
  let loaded = 0;
  report(0, total);
  try {
    const reader = response.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      loaded += value.byteLength;
      report(loaded, total);
    }
  } catch (error) {
    throw new EffyoloError('weights', `the weights download from ${url} broke off: ${error.message}`, { cause: error });
  }
  const bytes = new Uint8Array(loaded);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  report(loaded, loaded);
  return bytes.buffer;
}

/** One inference Worker: numbered requests, replies matched to them. */
class Session {
  /** The build name, its buildInfo() and the thread count, once started. */
  build = null;
  buildInfo = null;
  threads = 1;
  #worker;
  #pending = new Map();
  #nextId = 1;
  #closed = null;

  static async start(spawnWorker, { build, threads }) {
    let worker;
    try {
      worker = spawnWorker();
    } catch (error) {
      throw new EffyoloError('worker', `the inference worker could not be created: ${error.message}`, { cause: error });
    }
    const session = new Session(worker);
    try {
      const { buildInfo } = await session.request({ type: 'start', build, threads });
      session.build = build;
      session.threads = threads;
      session.buildInfo = buildInfo;
      return session;
    } catch (error) {
      session.close();
      throw error;
    }
  }

  constructor(worker) {
    this.#worker = worker;
    worker.addEventListener('message', ({ data }) => this.#settle(data));
    worker.addEventListener('error', (event) => {
      event.preventDefault();
      const where = event.filename ? ` (${event.filename}:${event.lineno})` : '';
      this.#fail(new EffyoloError('worker', `the inference worker failed${where}: ${event.message || 'it could not be loaded'}`));
    });
    worker.addEventListener('messageerror', () => {
      this.#fail(new EffyoloError('worker', 'a message from the inference worker could not be read'));
    });
  }

  request(message, transfer = []) {
    if (this.#closed) {
      return Promise.reject(this.#closed);
    }
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#worker.postMessage({ ...message, id }, transfer);
    });
  }

  close() {
    this.#fail(new EffyoloError('disposed', 'the detector was disposed'));
  }

  #settle(reply) {
    const pending = this.#pending.get(reply?.id);
    if (!pending) return;
    this.#pending.delete(reply.id);
    if (reply.type === 'failed') {
      pending.reject(new EffyoloError(reply.code, reply.message));
    } else {
      pending.resolve(reply);
    }
  }

  /** Rejects everything pending and ends the Worker (and with it the thread pool). */
  #fail(error) {
    if (this.#closed) return;
    this.#closed = error;
    this.#worker.terminate();
    for (const { reject } of this.#pending.values()) {
      reject(error);
    }
    this.#pending.clear();
  }
}

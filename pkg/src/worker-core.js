// The inference side: runs in a dedicated module Worker, never on the page's main thread
// (rayon's workers spin while they wait, and the wasm `detect` call is synchronous).
//
// Protocol: every request carries an `id`; the reply echoes it, with type 'done' and the
// fields below, or type 'failed' with { code, message }.
//   { type: 'start', build, threads }  -> { buildInfo: { simd, threads } }
//   { type: 'load', weights }          -> { model: the WasmDetector's info() }
//   { type: 'detect', frame, size: [h, w], conf, iou, maxDet }
//                                      -> { boxes: Float32Array (6 per box), width, height, ms }
// A frame is an ImageBitmap (transferred) or { data, width, height } RGBA pixels.
// `start` is memoised: the runtime (module, memory, thread pool) is created once per Worker.

/** How long the thread pool may take to start before the build is given up. */
const THREAD_POOL_TIMEOUT_MS = 20000;

/**
 * Serves requests on this Worker.
 * @param {Record<string, () => Promise<any>>} loaders import functions of the wasm-bindgen
 *   glue per build name; the entry points give them as literal `import()`s so bundlers see them.
 */
export function serveDetector(loaders) {
  let runtime = null;
  let detector = null;
  let scratch = null;

  function start({ build, threads }) {
    runtime ??= (async () => {
      const load = loaders[build];
      if (!load) {
        throw codedError('unsupported', `unknown build '${build}'`);
      }
      const glue = await load();
      await glue.default();
      if (threads > 1) {
        if (typeof glue.initThreadPool !== 'function') {
          throw codedError('threads', `build '${build}' has no thread pool`);
        }
        await withTimeout(
          glue.initThreadPool(threads),
          THREAD_POOL_TIMEOUT_MS,
          `the thread pool did not start within ${THREAD_POOL_TIMEOUT_MS / 1000} s`,
        );
      }
      return { glue, threads };
    })();
    return runtime;
  }

  const handlers = {
    async start(request) {
      try {
        const { glue } = await start(request);
        return { buildInfo: JSON.parse(glue.buildInfo()) };
      } catch (error) {
        throw error.code ? error : codedError('threads', describe(error));
      }
    },

    async load({ weights }) {
      if (!runtime) {
        throw codedError('state', "'load' before 'start'");
      }
      const { glue, threads } = await runtime;
      detector?.free();
      detector = null;
      let created;
      try {
        created = new glue.WasmDetector(new Uint8Array(weights));
      } catch (error) {
        throw codedError('weights', `the weights are not a usable effyolo model: ${describe(error)}`);
      }
      created.setThreads(threads);
      detector = created;
      return { model: JSON.parse(detector.info()) };
    },

    detect({ frame, size, conf, iou, maxDet }) {
      if (!detector) {
        throw codedError('state', "'detect' before the model was loaded");
      }
      const { data, width, height } = pixels(frame);
      const t0 = performance.now();
      let boxes;
      try {
        boxes = detector.detect(data, width, height, size[0], size[1], conf, iou, maxDet);
      } catch (error) {
        throw codedError('input', describe(error));
      }
      return { boxes, width, height, ms: performance.now() - t0, transfer: [boxes.buffer] };
    },
  };

  /** RGBA bytes of a posted frame: an ImageBitmap (drawn here, off the main thread) or raw pixels. */
  function pixels(frame) {
    if (typeof ImageBitmap !== 'undefined' && frame instanceof ImageBitmap) {
      const { width, height } = frame;
      if (!scratch || scratch.canvas.width !== width || scratch.canvas.height !== height) {
        const canvas = new OffscreenCanvas(width, height);
        scratch = canvas.getContext('2d', { willReadFrequently: true });
      }
      scratch.clearRect(0, 0, width, height);
      scratch.drawImage(frame, 0, 0);
      frame.close();
      return { data: scratch.getImageData(0, 0, width, height).data, width, height };
    }
    const { data, width, height } = frame;
    return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width, height };
  }

  self.addEventListener('message', async ({ data: request }) => {
    const handler = handlers[request?.type];
    if (!handler) {
      return;
    }
    try {
      const { transfer = [], ...reply } = (await handler(request)) ?? {};
      self.postMessage({ ...reply, type: 'done', id: request.id }, transfer);
    } catch (error) {
      self.postMessage({ type: 'failed', id: request.id, code: error.code ?? 'internal', message: describe(error) });
    }
  });
}

function codedError(code, message) {
  const error = new Error(message);
  error.code = code;
  return error;
}

function describe(error) {
  return error instanceof Error ? error.message : String(error);
}

function withTimeout(promise, ms, message) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(codedError('threads', message)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

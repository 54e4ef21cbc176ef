// Types of both entry points, 'effyolo' (bundlers) and 'effyolo/no-bundler' (plain ES modules).

/** Network input: a square side or [height, width], multiples of 32. */
export type InputSize = number | [height: number, width: number];

export interface Progress {
  /** Bytes of the weight file received so far. */
  loaded: number;
  /** Size of the weight file, or null while the server has not said. */
  total: number | null;
}

export interface DetectOptions {
  /** Network input size (default: the detector's `size`). Larger finds smaller objects, slower. */
  size?: InputSize;
  /** Minimum score (objectness x class probability) of a box, in [0, 1] (default 0.25). */
  conf?: number;
  /** Boxes of one class overlapping more than this IoU are merged by NMS, in [0, 1] (default 0.45). */
  iou?: number;
  /** Most boxes returned (default 300). */
  maxDet?: number;
}

export interface DetectorOptions extends DetectOptions {
  /** Weight file (.safetensors): a URL, resolved against the page, or its bytes. */
  weights: string | URL | ArrayBuffer | ArrayBufferView;
  /**
   * Threads of the inference pool: 'auto' (default) uses the device's cores, up to 8; 1 runs
   * single-threaded. More than one needs a cross-origin isolated page (see README).
   */
  threads?: 'auto' | number;
  /** Called as the weights download (at least once, finally with loaded === total). */
  onProgress?: (progress: Progress) => void;
}

export interface Detection {
  /** Box corners in pixels of the source that was passed to detect(). */
  x1: number;
  y1: number;
  x2: number;
  y2: number;
  score: number;
  classId: number;
  /** The class name from the weight file. */
  label: string;
}

export interface ModelInfo {
  variant: string;
  widths: number[];
  depths: number[];
  mhsaBlocks: number;
  widthMultiple: number;
  depthMultiple: number;
  /** [height, width] the weights were trained at. */
  trainSize: [number, number];
  classNames: string[];
  anchors: number[][][];
  mean: number[];
  std: number[];
  parameters: number;
}

export type BuildName = 'threads-relaxed' | 'threads-simd' | 'single-simd';

export interface DetectorInfo {
  /** Which WebAssembly build runs. */
  build: BuildName;
  simd: 'relaxed-simd' | 'simd128';
  /** Threads inference uses (1 = single-threaded). */
  threads: number;
  crossOriginIsolated: boolean;
  /** Why a threaded build was wanted but is not running, or null. */
  fallback: string | null;
  model: ModelInfo;
}

export type DetectSource =
  | ImageData
  | ImageBitmap
  | HTMLVideoElement
  | HTMLCanvasElement
  | HTMLImageElement
  | OffscreenCanvas
  | Blob;

export interface Detector {
  /**
   * Detects objects in one frame. Requests are served one at a time, in order; a caller that
   * wants live video should drop frames while one is in flight rather than queue them.
   */
  detect(source: DetectSource, options?: DetectOptions): Promise<Detection[]>;
  info(): DetectorInfo;
  /** Ends the Worker and its threads; pending and later calls reject with code 'disposed'. */
  dispose(): void;
}

/**
 * Starts the inference Worker with the fastest build the page can run, downloads the weights
 * and loads the model. Rejects with an EffyoloError.
 */
export function createDetector(options: DetectorOptions): Promise<Detector>;

export type ErrorCode =
  /** The browser lacks WebAssembly or WebAssembly SIMD. */
  | 'unsupported'
  /** The weight file could not be downloaded or is not an effyolo model. */
  | 'weights'
  /** The inference Worker could not be created or crashed. */
  | 'worker'
  /** The thread pool failed to start (createDetector falls back to one thread first). */
  | 'threads'
  /** A frame or option the model cannot take. */
  | 'input'
  /** The detector was disposed. */
  | 'disposed'
  | 'state'
  | 'internal';

export class EffyoloError extends Error {
  readonly code: ErrorCode;
}

export interface Features {
  webAssembly: boolean;
  simd: boolean;
  relaxedSimd: boolean;
  crossOriginIsolated: boolean;
  /** Shared WebAssembly memory is available (requires cross-origin isolation). */
  threads: boolean;
  hardwareConcurrency: number;
}

/** What this page can run (cheap: validates three tiny WebAssembly modules). */
export function detectFeatures(): Features;

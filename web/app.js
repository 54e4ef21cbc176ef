// The demo page: webcam or image in, boxes out, with the numbers that matter (latency,
// detections per second, build, threads).
//
// URL parameters (all optional): weights=URL, size=N, conf=X, iou=X, threads=auto|N.
//
// Camera frames are never queued: while one frame is in the detector, the frames that arrive
// are dropped (and counted), so the boxes stay close to what the camera shows.

import { createDetector, detectFeatures } from 'effyolo';

const params = new URLSearchParams(location.search);
const $ = (id) => document.getElementById(id);
const ui = {
  notice: $('notice'),
  error: $('error'),
  loading: $('loading'),
  progress: $('progress'),
  progressLabel: $('progress-label'),
  camera: $('camera'),
  start: $('start'),
  file: $('file'),
  size: $('size'),
  conf: $('conf'),
  confValue: $('conf-value'),
  iou: $('iou'),
  iouValue: $('iou-value'),
  stage: $('stage'),
  video: $('video'),
  view: $('view'),
  build: $('build'),
  threads: $('threads'),
  fps: $('fps'),
  latency: $('latency'),
  dropped: $('dropped'),
  count: $('count'),
  model: $('model'),
};

const BUILD_NAMES = {
  'threads-relaxed': 'threads + relaxed SIMD',
  'threads-simd': 'threads + SIMD128',
  'single-simd': 'single thread + SIMD128',
};

let detector = null;
/** 'idle' | 'camera' | 'image' */
let mode = 'idle';
let stream = null;
let image = null; // the ImageBitmap shown in image mode
let busy = false; // a frame is in the detector
let imageAgain = false; // image settings changed while busy
const frameCanvas = document.createElement('canvas');
const frameContext = frameCanvas.getContext('2d', { willReadFrequently: true });
const stats = { dropped: 0, latency: null, interval: null, last: null };

// ---- messages -----------------------------------------------------------------------------

function showError(text) {
  ui.error.textContent = text;
  ui.error.hidden = !text;
}

function showNotice(text) {
  ui.notice.textContent = text;
  ui.notice.hidden = !text;
}

function cameraErrorMessage(error) {
  switch (error?.name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return 'Camera permission was denied. Allow camera access for this page in the browser settings, or pick an image instead.';
    case 'NotFoundError':
    case 'OverconstrainedError':
      return 'No camera was found. Connect one and try again, or pick an image instead.';
    case 'NotReadableError':
    case 'AbortError':
      return 'The camera is busy: another application or tab may be using it. Close it and try again, or pick an image instead.';
    default:
      return `The camera could not be started (${error?.message || error}). Pick an image instead.`;
  }
}

// ---- settings -----------------------------------------------------------------------------

function readNumber(name, fallback) {
  const value = Number(params.get(name));
  return params.has(name) && Number.isFinite(value) ? value : fallback;
}

function initialSettings() {
  const size = readNumber('size', 320);
  if (![...ui.size.options].some((o) => Number(o.value) === size)) {
    ui.size.add(new Option(String(size), String(size)));
  }
  ui.size.value = String(size);
  ui.conf.value = String(readNumber('conf', 0.25));
  ui.iou.value = String(readNumber('iou', 0.45));
  showSettings();
}

function settings() {
  return { size: Number(ui.size.value), conf: Number(ui.conf.value), iou: Number(ui.iou.value) };
}

function showSettings() {
  const { conf, iou } = settings();
  ui.confValue.value = formatUnit(conf);
  ui.iouValue.value = formatUnit(iou);
}

function formatUnit(x) {
  return x.toFixed(3).replace(/0$/, '');
}

function onSettingsChanged() {
  showSettings();
  if (mode === 'image') detectImage();
}

// ---- drawing ------------------------------------------------------------------------------

function colour(classId) {
  return `hsl(${(classId * 137.508) % 360} 85% 55%)`;
}

/** Boxes (and in image mode the image under them) on the view canvas, in source pixels. */
function draw(detections, width, height, background) {
  const canvas = ui.view;
  if (canvas.width !== width || canvas.height !== height) {
    canvas.width = width;
    canvas.height = height;
  }
  const ctx = canvas.getContext('2d');
  ctx.clearRect(0, 0, width, height);
  if (background) ctx.drawImage(background, 0, 0);
  const line = Math.max(2, Math.round(Math.max(width, height) / 320));
  const font = Math.max(12, Math.round(Math.max(width, height) / 45));
  ctx.font = `600 ${font}px system-ui, sans-serif`;
  ctx.textBaseline = 'top';
  for (const d of detections) {
    const x = Math.max(0, d.x1);
    const y = Math.max(0, d.y1);
    const w = Math.min(width, d.x2) - x;
    const h = Math.min(height, d.y2) - y;
    ctx.strokeStyle = ctx.fillStyle = colour(d.classId);
    ctx.lineWidth = line;
    ctx.strokeRect(x, y, w, h);
    const text = `${d.label} ${d.score.toFixed(2)}`;
    const tw = ctx.measureText(text).width + 2 * line + 4;
    const th = font + 2 * line;
    const ty = y - th >= 0 ? y - th : y;
    ctx.fillRect(x - line / 2, ty, tw, th);
    ctx.fillStyle = '#000';
    ctx.fillText(text, x + line + 2, ty + line);
  }
}

function clearView() {
  ui.view.getContext('2d').clearRect(0, 0, ui.view.width, ui.view.height);
}

function setMode(next) {
  mode = next;
  ui.stage.dataset.mode = next;
}

// ---- results, statistics and the automation hook ----------------------------------------

const results = { count: 0, last: null, frame: null, waiters: [] };

/** Called once per finished detection, while `frame` still holds the pixels it ran on. */
function record(detections, width, height, ms, frame) {
  const now = performance.now();
  const ema = (old, x) => (old == null ? x : 0.8 * old + 0.2 * x);
  stats.latency = ema(stats.latency, ms);
  if (stats.last != null && mode === 'camera') stats.interval = ema(stats.interval, now - stats.last);
  stats.last = now;
  ui.latency.textContent = `${Math.round(stats.latency)} ms`;
  ui.fps.textContent = mode === 'camera' && stats.interval ? (1000 / stats.interval).toFixed(1) : '–';
  ui.dropped.textContent = mode === 'camera' ? String(stats.dropped) : '–';
  ui.count.textContent = String(detections.length);

  results.count += 1;
  results.last = { detections, width, height, source: mode, ms };
  results.frame = frame;
  const due = results.waiters.filter((w) => results.count > w.after);
  results.waiters = results.waiters.filter((w) => results.count <= w.after);
  for (const w of due) w.resolve(withFrame(w.frame));
}

/** The last result, with the frame it ran on as a PNG data URL when asked. */
function withFrame(frame) {
  if (!frame) return results.last;
  let png = null;
  if (results.frame) {
    const canvas = document.createElement('canvas');
    canvas.width = results.last.width;
    canvas.height = results.last.height;
    canvas.getContext('2d').drawImage(results.frame, 0, 0);
    png = canvas.toDataURL('image/png');
  }
  return { ...results.last, frame: png };
}

let resolveReady;
/**
 * For automated checks of the page: `ready` resolves with detector.info() (or null when it
 * failed to start); `waitForResult(after, { frame })` resolves with the first result whose
 * 1-based number is above `after` ({ detections, width, height, source, ms }), with the frame
 * it ran on as a PNG data URL when asked. Camera frames are only kept while their result is
 * recorded, so asking for one waits for the next camera result.
 */
window.effyoloDemo = {
  ready: new Promise((resolve) => { resolveReady = resolve; }),
  info: null,
  get resultCount() { return results.count; },
  waitForResult(after = results.count, { frame = false } = {}) {
    if (results.count > after && (!frame || results.last.source === 'image')) {
      return Promise.resolve(withFrame(frame));
    }
    return new Promise((resolve) => results.waiters.push({ after: Math.max(after, results.count), frame, resolve }));
  },
};

// ---- camera -------------------------------------------------------------------------------

async function listCameras() {
  if (!navigator.mediaDevices?.enumerateDevices) return;
  let devices;
  try {
    devices = (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === 'videoinput' && d.deviceId);
  } catch {
    return;
  }
  const selected = ui.camera.value;
  ui.camera.replaceChildren(new Option('Default camera', ''));
  devices.forEach((d, i) => ui.camera.add(new Option(d.label || `Camera ${i + 1}`, d.deviceId)));
  const active = stream?.getVideoTracks()[0]?.getSettings().deviceId;
  ui.camera.value = [active, selected].find((id) => id && devices.some((d) => d.deviceId === id)) ?? '';
}

async function startCamera() {
  showError('');
  if (!navigator.mediaDevices?.getUserMedia) {
    showError('This browser gives no camera access to this page (it needs https or localhost). Pick an image instead.');
    return;
  }
  ui.start.disabled = true;
  const deviceId = ui.camera.value;
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      video: deviceId ? { deviceId: { exact: deviceId } } : true,
      audio: false,
    });
  } catch (error) {
    stream = null;
    showError(cameraErrorMessage(error));
    ui.start.disabled = false;
    return;
  }
  const [track] = stream.getVideoTracks();
  track.addEventListener('ended', () => {
    if (mode !== 'camera') return;
    stopCamera();
    showError('The camera stopped (it was disconnected or taken by another application).');
  });
  ui.video.srcObject = stream;
  try {
    await ui.video.play();
  } catch (error) {
    stopCamera();
    showError(cameraErrorMessage(error));
    ui.start.disabled = false;
    return;
  }
  if (results.frame === image) results.frame = null;
  image?.close();
  image = null;
  stats.dropped = 0;
  stats.interval = null;
  stats.last = null;
  clearView();
  setMode('camera');
  ui.start.textContent = 'Stop camera';
  ui.start.disabled = false;
  scheduleFrame();
  listCameras();
}

function stopCamera() {
  stream?.getTracks().forEach((t) => t.stop());
  stream = null;
  ui.video.srcObject = null;
  ui.start.textContent = 'Start camera';
  if (mode === 'camera') {
    clearView();
    setMode('idle');
  }
}

const hasFrameCallback = 'requestVideoFrameCallback' in HTMLVideoElement.prototype;
let lastVideoTime = -1;

function scheduleFrame() {
  if (mode !== 'camera') return;
  if (hasFrameCallback) {
    ui.video.requestVideoFrameCallback(onVideoFrame);
  } else {
    requestAnimationFrame(onVideoFrame);
  }
}

/** Runs on every new camera frame; drops it when the detector is still busy. */
function onVideoFrame() {
  if (mode !== 'camera') return;
  scheduleFrame();
  // Without requestVideoFrameCallback this runs per display refresh: skip repeated frames.
  if (!hasFrameCallback) {
    if (ui.video.currentTime === lastVideoTime) return;
    lastVideoTime = ui.video.currentTime;
  }
  if (busy) {
    stats.dropped += 1;
    return;
  }
  busy = true;
  detectCameraFrame().finally(() => {
    busy = false;
    if (mode === 'image' && imageAgain) detectImage();
  });
}

async function detectCameraFrame() {
  const { videoWidth: width, videoHeight: height } = ui.video;
  if (!width || !height) return;
  if (frameCanvas.width !== width || frameCanvas.height !== height) {
    frameCanvas.width = width;
    frameCanvas.height = height;
  }
  frameContext.drawImage(ui.video, 0, 0, width, height);
  const t0 = performance.now();
  let detections;
  try {
    detections = await detector.detect(frameCanvas, settings());
  } catch (error) {
    stopCamera();
    showError(`Detection failed: ${error.message}`);
    return;
  }
  if (mode !== 'camera') return;
  draw(detections, width, height, null);
  record(detections, width, height, performance.now() - t0, frameCanvas);
}

// ---- images -------------------------------------------------------------------------------

async function openImage(file) {
  if (!file) return;
  showError('');
  if (file.type && !file.type.startsWith('image/')) {
    showError(`"${file.name}" is not an image.`);
    return;
  }
  let bitmap;
  try {
    // Without colour management, as the command-line tool reads images.
    bitmap = await createImageBitmap(file, { colorSpaceConversion: 'none' });
  } catch {
    showError(`"${file.name}" could not be decoded as an image.`);
    return;
  }
  stopCamera();
  if (results.frame === image) results.frame = null;
  image?.close();
  image = bitmap;
  setMode('image');
  draw([], image.width, image.height, image);
  detectImage();
}

async function detectImage() {
  if (!image || !detector) return;
  if (busy) {
    imageAgain = true;
    return;
  }
  busy = true;
  imageAgain = false;
  const current = image;
  const t0 = performance.now();
  try {
    const detections = await detector.detect(current, settings());
    if (current === image) {
      draw(detections, current.width, current.height, current);
      record(detections, current.width, current.height, performance.now() - t0, current);
    }
  } catch (error) {
    showError(`Detection failed: ${error.message}`);
  } finally {
    busy = false;
  }
  if (imageAgain) detectImage();
}

// ---- start-up -----------------------------------------------------------------------------

function describeModel(info) {
  const m = info.model;
  const millions = (m.parameters / 1e6).toFixed(1);
  return `Model: EfficientFormer-${m.variant.toUpperCase()} backbone + YOLOv5 head, ${m.classNames.length} classes, `
    + `${millions} M parameters, trained at ${m.trainSize[0]}×${m.trainSize[1]}.`;
}

function formatMegabytes(bytes) {
  return (bytes / 1e6).toFixed(1);
}

async function main() {
  initialSettings();
  ui.size.addEventListener('change', onSettingsChanged);
  ui.conf.addEventListener('input', onSettingsChanged);
  ui.iou.addEventListener('input', onSettingsChanged);
  ui.start.addEventListener('click', () => (mode === 'camera' ? stopCamera() : startCamera()));
  ui.camera.addEventListener('change', () => {
    if (mode === 'camera') {
      stopCamera();
      startCamera();
    }
  });
  ui.file.addEventListener('change', () => {
    openImage(ui.file.files[0]);
    ui.file.value = '';
  });
  // Dropping a file anywhere must not navigate away; on the picture it opens the image.
  for (const type of ['dragover', 'drop']) document.addEventListener(type, (e) => e.preventDefault());
  ui.stage.addEventListener('dragover', () => ui.stage.classList.add('dragover'));
  ui.stage.addEventListener('dragleave', () => ui.stage.classList.remove('dragover'));
  ui.stage.addEventListener('drop', (e) => {
    ui.stage.classList.remove('dragover');
    if (detector) openImage(e.dataTransfer?.files[0]);
  });
  navigator.mediaDevices?.addEventListener?.('devicechange', listCameras);

  const features = detectFeatures();
  if (!features.crossOriginIsolated) {
    showNotice('This page is not cross-origin isolated (the server sent no COOP/COEP headers), so detection runs on a single thread.');
  }
  const weights = params.get('weights') ?? 'weights/effyolo-l1.safetensors';
  const threadsParam = params.get('threads');
  const threads = threadsParam && threadsParam !== 'auto' ? Number(threadsParam) : 'auto';
  try {
    detector = await createDetector({
      weights,
      threads,
      ...settings(),
      onProgress({ loaded, total }) {
        if (total) {
          ui.progress.max = total;
          ui.progress.value = loaded;
          ui.progressLabel.textContent = `Downloading the model: ${formatMegabytes(loaded)} / ${formatMegabytes(total)} MB`;
        } else {
          ui.progress.removeAttribute('value');
          ui.progressLabel.textContent = `Downloading the model: ${formatMegabytes(loaded)} MB`;
        }
      },
    });
  } catch (error) {
    ui.loading.hidden = true;
    showError(error.code === 'weights'
      ? `The model weights failed to load: ${error.message}. Check the connection and reload the page.`
      : `The detector could not start: ${error.message}`);
    resolveReady(null);
    return;
  }
  const info = detector.info();
  ui.loading.hidden = true;
  ui.build.textContent = BUILD_NAMES[info.build] ?? info.build;
  ui.threads.textContent = String(info.threads);
  ui.model.textContent = describeModel(info);
  if (info.fallback && features.crossOriginIsolated) {
    showNotice(`Detection runs on a single thread: ${info.fallback}.`);
  }
  ui.start.disabled = false;
  ui.file.disabled = false;
  listCameras();
  window.effyoloDemo.info = info;
  resolveReady(info);
}

main();

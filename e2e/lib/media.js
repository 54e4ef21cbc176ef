// Image helpers: decoding through the browser (as the page decodes) and the fake camera's
// .y4m video, written here so the tests need no video tools.
import { readFile, writeFile } from 'node:fs/promises';

/**
 * Decodes image bytes in `page` (any page, about:blank will do) to RGBA pixels, without
 * colour management as the CLI and the demo read files.
 */
export async function decodeImage(page, bytes) {
  const { width, height, base64 } = await page.evaluate(async (b64) => {
    const data = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const bitmap = await createImageBitmap(new Blob([data]), { colorSpaceConversion: 'none' });
    const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
    const ctx = canvas.getContext('2d');
    ctx.drawImage(bitmap, 0, 0);
    const rgba = ctx.getImageData(0, 0, bitmap.width, bitmap.height).data;
    let binary = '';
    for (let i = 0; i < rgba.length; i += 0x8000) binary += String.fromCharCode(...rgba.subarray(i, i + 0x8000));
    return { width: bitmap.width, height: bitmap.height, base64: btoa(binary) };
  }, Buffer.from(bytes).toString('base64'));
  return { width, height, rgba: Buffer.from(base64, 'base64') };
}

export async function decodeImageFile(page, file) {
  return decodeImage(page, await readFile(file));
}

export function dataUrlBytes(dataUrl) {
  return Buffer.from(dataUrl.slice(dataUrl.indexOf(',') + 1), 'base64');
}

/**
 * Writes a one-frame 4:2:0 .y4m (Chromium's fake camera plays it in a loop). Odd edges are
 * cropped; colours are converted with BT.601 limited range, as Chromium reads such a file.
 * @returns {{ width: number, height: number }} the video size
 */
export async function writeY4m(file, { width, height, rgba }) {
  const w = width & ~1;
  const h = height & ~1;
  const y = Buffer.alloc(w * h);
  const u = Buffer.alloc((w / 2) * (h / 2));
  const v = Buffer.alloc((w / 2) * (h / 2));
  const clamp = (x) => Math.max(0, Math.min(255, Math.round(x)));
  for (let row = 0; row < h; row++) {
    for (let col = 0; col < w; col++) {
      const i = (row * width + col) * 4;
      y[row * w + col] = clamp(16 + (65.481 * rgba[i] + 128.553 * rgba[i + 1] + 24.966 * rgba[i + 2]) / 255);
    }
  }
  for (let row = 0; row < h; row += 2) {
    for (let col = 0; col < w; col += 2) {
      let r = 0, g = 0, b = 0;
      for (const [dr, dc] of [[0, 0], [0, 1], [1, 0], [1, 1]]) {
        const i = ((row + dr) * width + col + dc) * 4;
        r += rgba[i] / 4;
        g += rgba[i + 1] / 4;
        b += rgba[i + 2] / 4;
      }
      const j = (row / 2) * (w / 2) + col / 2;
      u[j] = clamp(128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255);
      v[j] = clamp(128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255);
    }
  }
  const header = Buffer.from(`YUV4MPEG2 W${w} H${h} F30:1 Ip A1:1 C420jpeg\nFRAME\n`);
  await writeFile(file, Buffer.concat([header, y, u, v]));
  return { width: w, height: h };
}

/** Mean absolute difference per RGB channel between two images of the same size (0-255). */
export function meanAbsDiff(a, b, width, height) {
  let sum = 0;
  for (let row = 0; row < height; row++) {
    for (let col = 0; col < width; col++) {
      const i = (row * a.width + col) * 4;
      const j = (row * b.width + col) * 4;
      for (let c = 0; c < 3; c++) sum += Math.abs(a.rgba[i + c] - b.rgba[j + c]);
    }
  }
  return sum / (width * height * 3);
}

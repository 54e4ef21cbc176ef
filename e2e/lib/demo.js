// Driving the demo page (web/) the way the tests need.
import { writeFile } from 'node:fs/promises';

import { startServer, demoMounts } from '../../web/server.js';
import { weightsPath } from './env.js';
import { dataUrlBytes } from './media.js';
import { cliDetections, pickThreshold, assertSameDetections } from './reference.js';

/** The demo as the dev server serves it, with or without cross-origin isolation. */
export function startDemoServer({ isolated = true } = {}) {
  return startServer({ mounts: demoMounts(weightsPath), isolated });
}

/** Waits for the detector to load; returns detector.info(), or null when it failed. */
export function demoReady(page) {
  return page.evaluate(() => window.effyoloDemo.ready);
}

export function resultCount(page) {
  return page.evaluate(() => window.effyoloDemo.resultCount);
}

/** The first result numbered above `after`, with its frame as PNG bytes when asked. */
export async function waitForResult(page, after, { frame = false } = {}) {
  const result = await page.evaluate(
    ([n, f]) => window.effyoloDemo.waitForResult(n, { frame: f }),
    [after, frame],
  );
  return frame ? { ...result, frame: result.frame && dataUrlBytes(result.frame) } : result;
}

/** Moves the confidence slider as a user would (the page re-detects a shown image). */
export async function setConfidence(page, value) {
  await page.evaluate((v) => {
    const slider = document.getElementById('conf');
    slider.value = String(v);
    slider.dispatchEvent(new Event('input', { bubbles: true }));
  }, value);
}

/** Picks an image file with the page's file input. */
export function pickImage(page, file) {
  return page.setInputFiles('#file', file);
}

/** Drops an image file on the picture, as dragging it from a file manager does. */
export async function dropImage(page, name, bytes) {
  const dataTransfer = await page.evaluateHandle(([fileName, b64]) => {
    const data = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const transfer = new DataTransfer();
    transfer.items.add(new File([data], fileName, { type: 'image/jpeg' }));
    return transfer;
  }, [name, Buffer.from(bytes).toString('base64')]);
  await page.dispatchEvent('#stage', 'dragover', { dataTransfer });
  await page.dispatchEvent('#stage', 'drop', { dataTransfer });
}

/**
 * Shows a source in the demo, has it detect at a low threshold, then moves the confidence
 * slider to a threshold in a wide score gap and checks that the boxes the page draws then are
 * the CLI's on the same picture.
 * @param {object} flow
 * @param {boolean} flow.camera frames come from the camera (a result in flight may still use
 *   the previous threshold, so one more is awaited after each change)
 * @param {() => Promise<void>} [flow.show] puts the picture on the page (image mode)
 * @param {string} [flow.cliImage] the file the CLI reads; by default the frame the page
 *   detected on, saved to `flow.frameFile`
 * @param {string} flow.frameFile where the frame the compared boxes came from is written
 * @returns the compared result ({ detections, width, height }) and the threshold
 */
export async function compareWithCli(page, { camera, show, cliImage, frameFile }) {
  const settle = camera ? 1 : 0;
  const shown = await page.evaluate(() => document.getElementById('stage').dataset.mode === 'image');
  let before = await resultCount(page);
  await setConfidence(page, 0.01);
  if (shown && !camera) {
    // The image on show is detected again; that result must not be taken for the next one.
    await waitForResult(page, before);
    before = await resultCount(page);
  }
  await show?.();
  const low = await waitForResult(page, before + settle, { frame: true });
  await writeFile(frameFile, low.frame);
  const lowCli = await cliDetections(cliImage ?? frameFile, 0.01);
  const threshold = pickThreshold(low.detections, lowCli);

  const count = await resultCount(page);
  await setConfidence(page, threshold);
  const result = await waitForResult(page, count + settle, { frame: true });
  await writeFile(frameFile, result.frame);
  const cli = await cliDetections(cliImage ?? frameFile, threshold);
  assertSameDetections(result.detections, cli);
  return { ...result, threshold };
}

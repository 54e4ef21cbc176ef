// The demo page (web/) in Chromium: fake webcam, image pick and drop, a page that is not
// cross-origin isolated, camera failures. Each test fails on any page or console error.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { launchChromium, openPage } from '../lib/browser.js';
import { compareWithCli, demoReady, dropImage, pickImage, startDemoServer, waitForResult } from '../lib/demo.js';
import { outDir, peopleImages, trainedWeights } from '../lib/env.js';
import { decodeImage, decodeImageFile, meanAbsDiff, writeY4m } from '../lib/media.js';

const TIMEOUT = { timeout: 240_000 };
const [cameraImage, pickedImage, droppedImage] = peopleImages();

let server;
let browser;

before(async () => {
  server = await startDemoServer();
  browser = await launchChromium();
});

after(async () => {
  await camera?.browser.close();
  await browser?.close();
  await server?.close();
});

/** Loads the demo in `browser` and checks that its detector started. */
async function openDemo(target, url = server.url, options) {
  const demo = await openPage(target, url, options);
  const info = await demoReady(demo.page);
  assert.ok(info, `the detector did not start: ${await demo.page.textContent('#error')}`);
  return { ...demo, info };
}

/** The camera test's page, kept open for the screenshot test. */
let camera = null;

test('1. fake webcam: the boxes drawn on a frame match the CLI on that frame', TIMEOUT, async (t) => {
  const blank = await browser.newPage();
  const source = await decodeImageFile(blank, cameraImage);
  await blank.close();
  const video = path.join(outDir, 'camera.y4m');
  const size = await writeY4m(video, source);

  const cameraBrowser = await launchChromium({ fakeCamera: video });
  camera = { browser: cameraBrowser };
  const demo = await openDemo(cameraBrowser);
  camera.demo = demo;
  const { page } = demo;
  assert.equal(demo.info.crossOriginIsolated, true);
  assert.ok(demo.info.threads > 1, `threads: ${demo.info.threads}`);
  assert.match(demo.info.build, /^threads-/);
  await page.click('#start');

  const frameFile = path.join(outDir, 'camera-frame.png');
  const result = await compareWithCli(page, { camera: true, frameFile });
  // The fake camera plays a green test pattern when it cannot read the file: check that the
  // page received this test's picture.
  assert.deepEqual([result.width, result.height], [size.width, size.height], 'camera frame size');
  const frame = await decodeImage(page, await readFile(frameFile));
  const diff = meanAbsDiff(frame, source, size.width, size.height);
  assert.ok(diff < 6, `the camera frame differs from ${path.basename(cameraImage)} by ${diff.toFixed(1)} per channel`);
  if (trainedWeights) {
    assert.ok(result.detections.some((d) => d.label === 'person'), 'no person found in the camera frame');
  }
  t.diagnostic(`${path.basename(cameraImage)}: ${result.detections.length} boxes at conf ${result.threshold} match the CLI `
    + `(${demo.info.build}, ${demo.info.threads} threads, frame differs by ${diff.toFixed(2)})`);
  demo.assertClean();
});

test('6. screenshot of the demo with boxes', TIMEOUT, async (t) => {
  assert.ok(camera?.demo, 'needs the camera page of test 1');
  t.after(() => camera.browser.close());
  const { page } = camera.demo;
  // What a person sees: the video with boxes, labels and scores, and the numbers below it.
  await waitForResult(page, await page.evaluate(() => window.effyoloDemo.resultCount));
  const shown = await page.evaluate(() => {
    const canvas = document.getElementById('view');
    const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    let opaque = 0;
    for (let i = 3; i < pixels.length; i += 4) opaque += pixels[i] > 0 ? 1 : 0;
    const text = (id) => document.getElementById(id).textContent;
    return { opaque, count: text('count'), fps: text('fps'), latency: text('latency'), build: text('build') };
  });
  assert.ok(shown.opaque > 0, 'no boxes on the overlay');
  assert.ok(Number(shown.count) > 0, `objects shown: ${shown.count}`);
  assert.match(shown.fps, /^\d+(\.\d)?$/, 'detections per second');
  assert.match(shown.latency, /^\d+ ms$/, 'latency');
  const screenshot = path.join(outDir, 'demo-webcam.png');
  await page.screenshot({ path: screenshot, fullPage: true });
  t.diagnostic(`${path.relative(process.cwd(), screenshot)}: ${shown.count} objects, ${shown.fps} detections/s, `
    + `${shown.latency}, ${shown.build}`);

  await page.click('#start');
  assert.equal(await page.getAttribute('#stage', 'data-mode'), 'idle', 'the camera did not stop');
  camera.demo.assertClean();
});

test('2. image pick and drop: the same detections as the CLI', TIMEOUT, async () => {
  const demo = await openDemo(browser);
  const { page } = demo;
  await compareWithCli(page, {
    show: () => pickImage(page, pickedImage),
    cliImage: pickedImage,
    frameFile: path.join(outDir, 'picked-frame.png'),
  });
  await compareWithCli(page, {
    show: async () => dropImage(page, path.basename(droppedImage), await readFile(droppedImage)),
    cliImage: droppedImage,
    frameFile: path.join(outDir, 'dropped-frame.png'),
  });
  demo.assertClean();
  await demo.close();
});

test('3. without COOP/COEP: single-threaded, says so, still detects', TIMEOUT, async (t) => {
  const plain = await startDemoServer({ isolated: false });
  t.after(() => plain.close());
  const demo = await openDemo(browser, plain.url);
  const { page } = demo;
  assert.equal(demo.info.crossOriginIsolated, false);
  assert.equal(demo.info.build, 'single-simd');
  assert.equal(demo.info.threads, 1);
  assert.match(demo.info.fallback, /cross-origin isolated/);
  assert.equal(await page.isVisible('#notice'), true, 'no notice shown');
  assert.match(await page.textContent('#notice'), /not cross-origin isolated.*single thread/);
  assert.equal(await page.textContent('#threads'), '1');
  await compareWithCli(page, {
    show: () => pickImage(page, pickedImage),
    cliImage: pickedImage,
    frameFile: path.join(outDir, 'single-thread-frame.png'),
  });
  demo.assertClean();
  await demo.close();
});

test('4. camera permission denied: the message, then the image fallback works', TIMEOUT, async (t) => {
  const denying = await launchChromium({ fakeCamera: null, grantCamera: false });
  t.after(() => denying.close());
  const demo = await openDemo(denying);
  const { page } = demo;
  await page.click('#start');
  await page.waitForSelector('#error:not([hidden])');
  assert.match(await page.textContent('#error'), /permission was denied/);
  assert.equal(await page.getAttribute('#stage', 'data-mode'), 'idle');

  await pickImage(page, pickedImage);
  const result = await waitForResult(page, 0);
  assert.equal(result.source, 'image');
  assert.ok(result.detections.length > 0, 'no detections on the picked image');
  assert.equal(await page.isVisible('#error'), false, 'the camera message stayed after the image was shown');
  demo.assertClean();
});

test('7. no camera, camera busy, weights missing: each has its message', TIMEOUT, async () => {
  for (const [name, expected] of [
    ['NotFoundError', /No camera was found/],
    ['NotReadableError', /camera is busy/],
  ]) {
    const context = await browser.newContext();
    await context.addInitScript((errorName) => {
      navigator.mediaDevices.getUserMedia = async () => {
        throw new DOMException('simulated', errorName);
      };
    }, name);
    const demo = await openDemo(context);
    await demo.page.click('#start');
    await demo.page.waitForSelector('#error:not([hidden])');
    assert.match(await demo.page.textContent('#error'), expected, name);
    demo.assertClean();
    await context.close();
  }

  // A missing weight file: the browser itself logs the failed request as a console error.
  const demo = await openPage(browser, `${server.url}?weights=missing.safetensors`, {
    allow: [/Failed to load resource: .*404/],
  });
  assert.equal(await demoReady(demo.page), null);
  assert.match(await demo.page.textContent('#error'), /weights failed to load.*HTTP 404/);
  assert.equal(await demo.page.isDisabled('#start'), true);
  demo.assertClean();
  await demo.close();
});

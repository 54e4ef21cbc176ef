// The npm package as users get it: `npm pack` of pkg/, installed into a Vite app (built,
// type-checked and previewed) and into a plain ES-module page with an import map.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFile, cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';

import { build, preview } from 'vite';

import { startServer } from '../../web/server.js';
import { launchChromium, openPage } from '../lib/browser.js';
import { outDir, peopleImages, repo, weightsPath } from '../lib/env.js';
import { assertSameDetections, cliDetections, pickThreshold } from '../lib/reference.js';

const run = promisify(execFile);
const require = createRequire(import.meta.url);
const TIMEOUT = { timeout: 300_000 };
const fixtures = path.join(repo, 'e2e', 'fixtures');
const [picture] = peopleImages();

let browser;
let tarball;
let expected;

before(async () => {
  browser = await launchChromium();
  const packDir = path.join(outDir, 'pack');
  await rm(packDir, { recursive: true, force: true });
  await mkdir(packDir, { recursive: true });
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', packDir], { cwd: path.join(repo, 'pkg') });
  const [packed] = JSON.parse(stdout);
  tarball = path.join(packDir, packed.filename);
  const files = new Set(packed.files.map((f) => f.path));
  for (const build of ['threads-relaxed', 'threads-simd', 'threads-relaxed-nb', 'threads-simd-nb', 'single-simd']) {
    for (const file of ['effyolo.js', 'effyolo_bg.wasm', 'package.json']) {
      assert.ok(files.has(`dist/${build}/${file}`), `the package lacks dist/${build}/${file}`);
    }
    if (build.startsWith('threads-')) {
      const helper = [...files].some((f) => f.startsWith(`dist/${build}/snippets/`) && f.includes('workerHelpers'));
      assert.ok(helper, `the package lacks the thread pool's worker helper of ${build}`);
    }
  }
  for (const file of ['src/index.js', 'src/no-bundler.js', 'src/index.d.ts', 'README.md']) {
    assert.ok(files.has(file), `the package lacks ${file}`);
  }

  const low = await cliDetections(picture, 0.01);
  const threshold = pickThreshold(low);
  expected = { threshold, detections: await cliDetections(picture, threshold) };
});

after(async () => {
  await browser?.close();
});

/** A fresh copy of a fixture app with the packed effyolo installed (from the tarball only). */
async function makeApp(name, assetsDir) {
  const app = path.join(outDir, name);
  await rm(app, { recursive: true, force: true });
  await cp(path.join(fixtures, name), app, { recursive: true });
  await writeFile(path.join(app, 'package.json'), JSON.stringify({ name: `effyolo-${name}`, private: true, type: 'module' }));
  await run('npm', ['install', '--offline', '--no-audit', '--no-fund', '--loglevel=error', tarball], { cwd: app });
  const assets = path.join(app, assetsDir);
  await mkdir(assets, { recursive: true });
  await copyFile(weightsPath, path.join(assets, 'effyolo-l1.safetensors'));
  await copyFile(picture, path.join(assets, 'picture.jpg'));
  return app;
}

/**
 * Opens an app page, waits for its detection and checks it like the CLI's; unless told
 * otherwise, also that it ran with threads.
 */
async function checkPage(url, { threaded = true, allow } = {}) {
  const demo = await openPage(browser, `${url}?conf=${expected.threshold}`, { allow });
  await demo.page.waitForFunction(() => window.result, null, { timeout: 120_000 });
  const result = await demo.page.evaluate(() => window.result);
  assert.equal(result.error, undefined, result.error);
  assert.equal(result.info.crossOriginIsolated, true);
  if (threaded) {
    assert.match(result.info.build, /^threads-/);
    assert.ok(result.info.threads > 1, `threads: ${result.info.threads}`);
  }
  assertSameDetections(result.detections, expected.detections);
  demo.assertClean();
  await demo.close();
  return result;
}

test('5a. npm pack -> Vite app (type-checked, built, previewed) detects with threads', TIMEOUT, async (t) => {
  const app = await makeApp('vite-app', 'public');
  const tsc = require.resolve('typescript/bin/tsc');
  await run(process.execPath, [tsc, '--noEmit', '-p', app]).catch((error) => {
    assert.fail(`the package's types do not check:\n${error.stdout}${error.stderr}`);
  });
  await build({ root: app, logLevel: 'warn' });
  const server = await preview({ root: app, logLevel: 'warn', preview: { host: '127.0.0.1', port: 0 } });
  t.after(() => server.close());
  const url = `http://127.0.0.1:${server.httpServer.address().port}/`;
  const result = await checkPage(url);
  t.diagnostic(`${result.detections.length} boxes at conf ${expected.threshold}, ${result.info.build}, ${result.info.threads} threads`);
});

let importMapApp;

test('5b. npm pack -> plain ES-module page with an import map detects with threads', TIMEOUT, async (t) => {
  importMapApp = await makeApp('import-map', '.');
  const server = await startServer({ mounts: { '/': importMapApp } });
  t.after(() => server.close());
  const result = await checkPage(server.url);
  t.diagnostic(`${result.detections.length} boxes at conf ${expected.threshold}, ${result.info.build}, ${result.info.threads} threads`);
});

test('5c. threads that fail to start fall back to one thread and say why', TIMEOUT, async (t) => {
  assert.ok(importMapApp, 'needs the app of test 5b');
  // The bundler entry on a page without a bundler: the thread pool's workers cannot find the
  // glue module, so the pool never starts.
  const html = await readFile(path.join(importMapApp, 'index.html'), 'utf8');
  await writeFile(path.join(importMapApp, 'wrong-entry.html'), html.replace('src/no-bundler.js', 'src/index.js'));
  const server = await startServer({ mounts: { '/': importMapApp } });
  t.after(() => server.close());
  const result = await checkPage(`${server.url}wrong-entry.html`, {
    threaded: false,
    allow: [/Failed to fetch dynamically imported module: .*\/dist\/threads-\w+\/$/],
  });
  assert.equal(result.info.build, 'single-simd');
  assert.equal(result.info.threads, 1);
  assert.match(result.info.fallback, /^threads failed to start: the thread pool did not start/);
  t.diagnostic(`fallback: ${result.info.fallback}`);
});

// The benchmark page (web/bench.html): on a short configuration both token mixers give
// positive timings, the MHSA/pool ratio is shown, and the JSON and CSV exports parse; its
// defaults and bad URL parameters; the page without cross-origin isolation. Each test fails on
// any page or console error.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, test } from 'node:test';

import { launchChromium, openPage } from '../lib/browser.js';
import { startBenchServer } from '../lib/bench.js';

const TIMEOUT = { timeout: 240_000 };

let server;
let browser;

before(async () => {
  server = await startBenchServer();
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await server?.close();
});

/** Reads what a click on an export button downloads. */
async function downloaded(page, button) {
  const [download] = await Promise.all([page.waitForEvent('download'), page.click(button)]);
  return readFile(await download.path(), 'utf8');
}

/** A CSV file as objects (fields hold no quotes or commas here). */
function parseCsv(text) {
  const [header, ...lines] = text.trim().split('\n');
  const columns = header.split(',');
  return lines.map((line) => {
    const cells = line.split(',');
    assert.equal(cells.length, columns.length, `CSV row '${line}'`);
    return Object.fromEntries(columns.map((c, i) => [c, cells[i]]));
  });
}

test('8. benchmark page: pool and MHSA blocks and the model are timed, the ratio is shown, exports parse', TIMEOUT, async (t) => {
  const query = 'threads=1,2&runs=3&warmup=1&blocks=4@224&models=l1:1&sizes=256&run=1';
  const bench = await openPage(browser, `${server.url}bench.html?${query}`);
  const { page } = bench;
  const report = await page.evaluate(() => window.effyoloBench.done);
  assert.equal(report.error, undefined, `the benchmark failed: ${report.error}`);
  assert.equal(report.environment.crossOriginIsolated, true);
  assert.ok(report.environment.builds.includes('single'), `builds: ${report.environment.builds}`);

  const blocks = report.results.filter((r) => r.kind === 'block');
  for (const mixer of ['meta4d', 'meta3d']) {
    const rows = blocks.filter((r) => r.mixer === mixer);
    assert.ok(rows.length > 0, `no ${mixer} rows`);
    for (const r of rows) {
      assert.ok(r.median_ms > 0 && r.p95_ms >= r.median_ms, `${mixer} ${r.build}/${r.threads}: ${r.median_ms} / ${r.p95_ms} ms`);
      assert.ok(r.gmac > 0 && r.gmac_per_s > 0, `${mixer}: ${r.gmac} GMAC, ${r.gmac_per_s} GMAC/s`);
      assert.ok(r.mhsa_pool_ratio > 0, `${mixer} ratio ${r.mhsa_pool_ratio}`);
    }
  }
  const models = report.results.filter((r) => r.kind === 'model');
  assert.ok(models.length > 0, 'no model rows');
  for (const r of models) {
    assert.ok(r.median_ms > 0 && r.gmac > 0, `model ${r.build}/${r.threads}: ${r.median_ms} ms, ${r.gmac} GMAC`);
    assert.ok(r.backbone_share > 0 && r.backbone_share < 1, `backbone share ${r.backbone_share}`);
    assert.ok(r.breakdown.some((s) => s.step === 'stage4'), 'no per-stage breakdown');
  }
  // Both thread counts ran on the threaded builds; the single-thread build only at 1.
  const threaded = blocks.filter((r) => r.build !== 'single');
  if (threaded.length) assert.deepEqual([...new Set(threaded.map((r) => r.threads))].sort(), [1, 2]);
  assert.ok(blocks.filter((r) => r.build === 'single').every((r) => r.threads === 1));

  // What a person sees: a ratio in every block row, bars in the chart.
  assert.ok(await page.isVisible('#block-rows'), 'the block table is not shown');
  assert.ok(await page.isVisible('#model-rows'), 'the model table is not shown');
  const ratios = await page.$$eval('#block-rows td.ratio', (cells) => cells.map((c) => c.textContent));
  assert.equal(ratios.length, blocks.length);
  for (const text of ratios) assert.match(text, /^\d+\.\d+× \(MACs \d+\.\d+×\)$/);
  assert.ok(await page.$$eval('#chart rect', (bars) => bars.length) >= report.results.length);
  assert.match(await page.textContent('#environment'), /crossOriginIsolated: true/);

  const json = JSON.parse(await downloaded(page, '#download-json'));
  assert.deepEqual(json.results, report.results);
  const csv = parseCsv(await downloaded(page, '#download-csv'));
  assert.equal(csv.length, report.results.length);
  assert.deepEqual(csv.map((r) => Number(r.median_ms)), report.results.map((r) => r.median_ms));
  assert.ok(csv.filter((r) => r.kind === 'block').every((r) => Number(r.mhsa_pool_ratio) > 0));

  t.diagnostic(`${report.results.length} rows in ${report.seconds} s; builds ${report.environment.builds.join(', ')}; `
    + `MHSA/pool at stage 4, 224: ${blocks.filter((r) => r.mixer === 'meta3d').map((r) => `${r.build}/${r.threads}t ${r.mhsa_pool_ratio}×`).join(', ')}`);
  bench.assertClean();
  await bench.close();
});

test('8d. benchmark page: GEMM rows with % of the nominal and the measured peak, and the memory run', TIMEOUT, async () => {
  const query = 'threads=1,2&runs=3&warmup=1&settle=2&blocks=none&models=l1:1&sizes=256&gemm=64x200x48,33x17x9&memory=12&run=1';
  const bench = await openPage(browser, `${server.url}bench.html?${query}`);
  const { page } = bench;
  const report = await page.evaluate(() => window.effyoloBench.done);
  assert.equal(report.error, undefined, `the benchmark failed: ${report.error}`);
  assert.equal(report.settings.peak, 28.6);
  assert.equal(report.settings.settle, 2);
  for (const r of report.results.filter((row) => row.kind !== 'memory')) {
    assert.equal(r.settled, 2 * r.runs, `${r.kind} ${r.build}: untimed passes before the timed ones`);
  }
  for (const [build, info] of Object.entries(report.buildInfo)) {
    assert.ok(info.kernels.includes('scalar'), `${build}: kernels ${info.kernels}`);
  }
  // One SIMD peak row per build, on one core, timed like the others.
  const peaks = report.results.filter((r) => r.kind === 'peak');
  assert.deepEqual(peaks.map((r) => r.build).sort(), Object.keys(report.buildInfo).sort());
  for (const r of peaks) {
    assert.ok(r.threads === 1 && r.runs === 3 && r.gmac_per_s > 0 && r.measured_peak_pct === null, JSON.stringify(r));
  }
  const gemms = report.results.filter((r) => r.kind === 'gemm');
  // Two shapes, each with B packed per call and ahead, per build and thread count of a model row.
  assert.equal(gemms.length, 4 * report.results.filter((r) => r.kind === 'model').length);
  assert.deepEqual([...new Set(gemms.map((r) => r.b_packed))].sort(), ['ahead', 'per call']);
  for (const r of gemms) {
    assert.equal(r.kernel, report.buildInfo[r.build].kernels[0], `${r.build}: the best kernel`);
    assert.ok(r.median_ms > 0 && r.gmac_per_s > 0, `${r.m}x${r.n}x${r.k} ${r.build}: ${JSON.stringify(r)}`);
    assert.equal(r.gmac, Number(((r.m * r.n * r.k) / 1e9).toPrecision(4)), `${r.m}x${r.n}x${r.k}: GMAC`);
    const pct = (100 * r.gmac_per_s) / (28.6 * r.threads);
    assert.ok(Math.abs(r.peak_pct - pct) <= 0.1, `peak_pct ${r.peak_pct}, expected ${pct}`);
    const peak = peaks.find((p) => p.build === r.build);
    const measured = (100 * r.gmac_per_s) / (peak.gmac_per_s * r.threads);
    assert.ok(Math.abs(r.measured_peak_pct - measured) <= 0.1, `measured_peak_pct ${r.measured_peak_pct}, expected ${measured}`);
  }
  const memory = report.results.filter((r) => r.kind === 'memory');
  assert.deepEqual(memory.map((r) => r.build).sort(), Object.keys(report.buildInfo).sort());
  for (const r of memory) {
    assert.equal(r.frames, 12);
    assert.ok(r.wasm_mb_after_first > 0 && r.wasm_mb_end >= r.wasm_mb_after_first, JSON.stringify(r));
    assert.ok(r.median_ms > 0);
  }
  assert.ok(await page.isVisible('#gemm-rows'), 'the GEMM table is not shown');
  assert.ok(await page.isVisible('#memory-rows'), 'the memory table is not shown');
  const csv = parseCsv(await downloaded(page, '#download-csv'));
  assert.ok(csv.some((row) => row.kind === 'gemm' && Number(row.peak_pct) > 0), 'GEMM rows in the CSV');
  assert.ok(csv.some((row) => row.kind === 'gemm' && Number(row.measured_peak_pct) > 0), 'measured peak % in the CSV');
  assert.equal(await page.$$eval('#gemm-rows tr[data-kind="peak"]', (rows) => rows.length), peaks.length);
  bench.assertClean();
  await bench.close();
});

test('8b. benchmark page: defaults in the form, a bad URL parameter is reported, not thrown', TIMEOUT, async () => {
  const plain = await openPage(browser, `${server.url}bench.html`);
  await plain.page.waitForSelector('#run:not([disabled])');
  const cores = await plain.page.evaluate(() => navigator.hardwareConcurrency);
  const threads = (await plain.page.inputValue('#threads')).split(',').map(Number);
  assert.equal(threads[0], 1);
  assert.equal(threads.at(-1), cores);
  assert.equal(await plain.page.inputValue('#models'), 'l1:0,l1:1,l1:4');
  assert.ok(await plain.page.isHidden('#error'));
  plain.assertClean();
  await plain.close();

  const bad = await openPage(browser, `${server.url}bench.html?blocks=5@320&run=1`);
  const report = await bad.page.evaluate(() => window.effyoloBench.done);
  assert.match(report.error, /blocks: '5@320'/);
  assert.match(await bad.page.textContent('#error'), /URL parameters: blocks/);
  bad.assertClean();
  await bad.close();
});

test('8c. benchmark page without cross-origin isolation: the single-thread build only, and says why', TIMEOUT, async () => {
  const plainServer = await startBenchServer({ isolated: false });
  try {
    const bench = await openPage(browser, `${plainServer.url}bench.html?builds=relaxed,single&runs=2&warmup=0&blocks=4@224&models=none&run=1`);
    const report = await bench.page.evaluate(() => window.effyoloBench.done);
    assert.match(report.error ?? '', /cannot run: relaxed \(available: single\)/);
    assert.match(await bench.page.textContent('#error'), /cannot run: relaxed/);
    assert.match(await bench.page.textContent('#notice'), /not cross-origin isolated/);
    bench.assertClean();
    await bench.close();

    // No builds named: the ones the page can run, so the single-thread build at 1 thread.
    const single = await openPage(browser, `${plainServer.url}bench.html?threads=1,2&runs=2&warmup=0&blocks=4@224&models=none&run=1`);
    const result = await single.page.evaluate(() => window.effyoloBench.done);
    assert.equal(result.error, undefined, result.error);
    assert.deepEqual(result.environment.builds, ['single']);
    assert.ok(result.results.length === 2 && result.results.every((r) => r.build === 'single' && r.median_ms > 0));
    single.assertClean();
    await single.close();
  } finally {
    await plainServer.close();
  }
});

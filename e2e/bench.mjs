#!/usr/bin/env node
// Runs the benchmark page (web/bench.html) in headless Chromium and prints each result as a
// JSON line, for measurement outside the browser UI.
//
//   node e2e/bench.mjs [--builds relaxed,simd128,single] [--threads 1,2] [--runs 20] [--warmup 3] [--settle 0]
//                      [--blocks 4@320|none] [--models l1:0,l1:1,l7|none] [--sizes 320]
//                      [--gemm all|MxNxK,..] [--memory FRAMES] [--timeout SECONDS] [--report FILE]
//
// Every --name value becomes the page's URL parameter name=value (see web/bench.js); what is
// left out takes the page's default. The first line is the environment ({"kind":"environment"},
// with each build's kernels), then one line per result
// ({"kind":"peak"|"gemm"|"block"|"model"|"memory", ...}). --report FILE also writes the whole
// report as JSON. Exits non-zero on a page error, a console error or a failed run.
import { writeFile } from 'node:fs/promises';

import { launchChromium, openPage } from './lib/browser.js';
import { startBenchServer } from './lib/bench.js';

const PAGE_PARAMS = ['builds', 'threads', 'runs', 'warmup', 'settle', 'blocks', 'models', 'sizes', 'gemm', 'memory', 'peak'];

function parseArgs(argv) {
  const params = new URLSearchParams();
  let timeout = 3600;
  let report = null;
  for (let i = 0; i < argv.length; i++) {
    const match = /^--([a-z]+)(?:=(.*))?$/.exec(argv[i]);
    if (!match) throw new Error(`unexpected argument '${argv[i]}'`);
    const name = match[1];
    const value = match[2] ?? argv[++i];
    if (value === undefined) throw new Error(`--${name} needs a value`);
    if (name === 'timeout') timeout = Number(value);
    else if (name === 'report') report = value;
    else if (PAGE_PARAMS.includes(name)) params.set(name, value);
    else throw new Error(`unknown option --${name} (${[...PAGE_PARAMS, 'timeout', 'report'].join(', ')})`);
  }
  params.set('run', '1');
  return { params, timeout, report };
}

async function main() {
  const { params, timeout, report: reportFile } = parseArgs(process.argv.slice(2));
  const server = await startBenchServer();
  const browser = await launchChromium();
  try {
    const query = params.toString().replaceAll('%2C', ',').replaceAll('%40', '@').replaceAll('%3A', ':');
    const bench = await openPage(browser, `${server.url}bench.html?${query}`);
    const report = await bench.page.evaluate(
      (ms) => Promise.race([
        window.effyoloBench.done,
        new Promise((resolve) => setTimeout(() => resolve({ error: `no result within ${ms / 1000} s` }), ms)),
      ]),
      timeout * 1000,
    );
    bench.assertClean();
    if (report.error) throw new Error(report.error);
    console.log(JSON.stringify({
      kind: 'environment', ...report.environment, buildInfo: report.buildInfo, query: report.settings.query, seconds: report.seconds,
    }));
    for (const row of report.results) {
      const { breakdown, ...line } = row;
      console.log(JSON.stringify(line));
    }
    if (reportFile) await writeFile(reportFile, `${JSON.stringify(report, null, 2)}\n`);
  } finally {
    await browser.close();
    await server.close();
  }
}

main().catch((error) => {
  console.error(`bench: ${error.message}`);
  process.exit(1);
});

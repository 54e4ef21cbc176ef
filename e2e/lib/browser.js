// Debian's Chromium through playwright-core (never a downloaded browser), and a record of
// everything a page reports as wrong: every test fails on a page error or a console error.
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

import { chromiumPath } from './env.js';

const BASE_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/**
 * Starts headless Chromium (a fresh profile each time).
 * @param {object} [options]
 * @param {string} [options.fakeCamera] a .y4m file the fake camera plays; with `grantCamera`
 * @param {boolean} [options.grantCamera=true] answer camera prompts with "allow"; false denies
 */
export async function launchChromium({ fakeCamera, grantCamera = true } = {}) {
  const args = [...BASE_ARGS];
  if (fakeCamera !== undefined) {
    args.push('--use-fake-device-for-media-stream');
    if (fakeCamera) args.push(`--use-file-for-fake-video-capture=${fakeCamera}`);
    if (grantCamera) args.push('--use-fake-ui-for-media-stream');
    else args.push('--deny-permission-prompts');
  }
  return chromium.launch({ executablePath: chromiumPath, args });
}

/**
 * A new page on `url` whose errors are collected: `problems` lists page errors and console
 * errors (the Workers' included) not matched by `allow`, which only a test that provokes a
 * failure on purpose names. `target` is a Browser (the page gets a context of its own) or a
 * BrowserContext.
 */
export async function openPage(target, url, { allow = [], viewport = { width: 1280, height: 900 } } = {}) {
  const ownContext = typeof target.newContext === 'function';
  const context = ownContext ? await target.newContext({ viewport }) : target;
  const page = await context.newPage();
  const problems = [];
  const allowed = (text) => allow.some((pattern) => pattern.test(text));
  page.on('pageerror', (error) => {
    if (!allowed(error.message)) problems.push(`page error: ${error.message}`);
  });
  page.on('console', (message) => {
    if (message.type() === 'error' && !allowed(message.text())) {
      problems.push(`console error: ${message.text()}`);
    }
  });
  page.on('crash', () => problems.push('the page crashed'));
  await page.goto(url);
  return {
    page,
    problems,
    assertClean() {
      assert.deepEqual(problems, [], 'the page reported errors');
    },
    close: () => (ownContext ? context.close() : page.close()),
  };
}

// The command-line detector as the reference the page is compared with.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

import { cliPath, inputSize, trainedWeights, weightsPath } from './env.js';

const run = promisify(execFile);

/** The CLI's detections on an image file, in the page's shape ({ x1, .., classId, label }). */
export async function cliDetections(image, conf) {
  const args = ['detect', '--weights', weightsPath, '--size', String(inputSize), '--conf', String(conf), '--max-det', '300', image];
  const { stdout } = await run(cliPath, args, { maxBuffer: 64 << 20 });
  const report = JSON.parse(stdout.trim().split('\n').pop());
  return report.detections.map(({ class_id: classId, ...d }) => ({ ...d, classId }));
}

/**
 * A confidence threshold in the widest gap between the scores of `lists` (the page's and the
 * CLI's at a low threshold), so that the tiny numeric differences between the two cannot move
 * a box across it. The threshold is the middle of the part of a gap that lies in the allowed
 * range, and gaps are ranked by the margin it leaves to the nearest score. With synthetic
 * weights it keeps a handful of boxes; with trained ones it stays between 0.15 and 0.45.
 */
export function pickThreshold(...lists) {
  const scores = lists.flat().map((d) => d.score).sort((a, b) => b - a);
  const [fewest, most, lowest, highest] = trainedWeights ? [1, 100, 0.15, 0.45] : [3, 12, 0, 1];
  let best = null;
  for (let i = 0; i + 1 < scores.length; i++) {
    const lo = Math.max(scores[i + 1], lowest);
    const hi = Math.min(scores[i], highest);
    if (!(lo < hi)) continue;
    const threshold = (lo + hi) / 2;
    const kept = lists.map((l) => l.filter((d) => d.score > threshold).length);
    if (Math.min(...kept) < fewest || Math.max(...kept) > most) continue;
    const margin = Math.min(threshold - scores[i + 1], scores[i] - threshold);
    if (!best || margin > best.margin) best = { threshold, margin };
  }
  assert.ok(best, `no usable threshold among ${scores.length} scores`);
  assert.ok(best.margin > 1e-3, `the widest score gap leaves a margin of only ${best.margin}`);
  return Number(best.threshold.toPrecision(8));
}

export function iou(a, b) {
  const w = Math.max(0, Math.min(a.x2, b.x2) - Math.max(a.x1, b.x1));
  const h = Math.max(0, Math.min(a.y2, b.y2) - Math.max(a.y1, b.y1));
  const inter = w * h;
  const union = (a.x2 - a.x1) * (a.y2 - a.y1) + (b.x2 - b.x1) * (b.y2 - b.y1) - inter;
  return union > 0 ? inter / union : 0;
}

/**
 * The page's boxes match the CLI's: the same classes (as a multiset), and every CLI box has
 * its own page box of that class with IoU >= 0.5.
 */
export function assertSameDetections(page, cli, what = 'page') {
  const classes = (list) => list.map((d) => d.label).sort();
  assert.deepEqual(classes(page), classes(cli), `${what}: classes differ from the CLI's`);
  assert.ok(cli.length > 0, `${what}: the CLI found nothing to compare`);
  const unused = [...page];
  for (const box of cli) {
    let best = -1;
    let bestIou = 0;
    unused.forEach((candidate, i) => {
      const overlap = candidate.classId === box.classId ? iou(candidate, box) : 0;
      if (overlap > bestIou) [best, bestIou] = [i, overlap];
    });
    assert.ok(bestIou >= 0.5, `${what}: no box matches the CLI's ${box.label} ${JSON.stringify(box)} (best IoU ${bestIou.toFixed(3)})`);
    unused.splice(best, 1);
  }
}

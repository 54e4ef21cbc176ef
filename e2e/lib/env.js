// Paths and settings shared by the tests. Every path is relative to the repository, or given
// by an environment variable.
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { WEIGHT_FILES } from '../../web/server.js';

export const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
/** Test outputs (screenshot, captured frames, packed apps); not committed. */
export const outDir = path.join(repo, 'e2e', 'out');
mkdirSync(outDir, { recursive: true });

/** The shared data folder (coco-dev images and labels), next to the checkout by default. */
export const dataDir = path.resolve(repo, process.env.EFFYOLO_DATA ?? '../shared/data');
export const chromiumPath = process.env.EFFYOLO_CHROMIUM ?? '/usr/bin/chromium';
export const cliPath = path.join(repo, 'target', 'release', 'effyolo');

/** True once trained weights ship: the tests then also expect people to be found. */
export const trainedWeights = existsSync(WEIGHT_FILES.shipped);
/** The weight file the demo serves by default (e2e/run.sh has web/weights.sh make it). */
export const weightsPath = trainedWeights ? WEIGHT_FILES.shipped : WEIGHT_FILES.synthetic;

/** Network input size every test uses (the CLI's --size and the page's size). */
export const inputSize = 320;

/**
 * coco-dev images that show people, most prominent first: ordered by the area of their
 * largest labelled person (class 0), among people that cover 15-50% of the image so the
 * frame shows a person with some scene around them.
 */
export function peopleImages() {
  const images = path.join(dataDir, 'coco-dev', 'images');
  const labels = path.join(dataDir, 'coco-dev', 'labels');
  if (!existsSync(labels)) {
    throw new Error(`no coco-dev data at ${path.dirname(labels)} (set EFFYOLO_DATA to the shared data folder)`);
  }
  const ranked = [];
  for (const name of readdirSync(labels).sort()) {
    const image = path.join(images, name.replace(/\.txt$/, '.jpg'));
    if (!existsSync(image)) continue;
    let largest = 0;
    for (const line of readFileSync(path.join(labels, name), 'utf8').split('\n')) {
      const [cls, , , w, h] = line.trim().split(/\s+/).map(Number);
      if (cls === 0 && w * h <= 0.5) largest = Math.max(largest, w * h);
    }
    if (largest >= 0.15) ranked.push({ image, largest });
  }
  ranked.sort((a, b) => b.largest - a.largest || a.image.localeCompare(b.image));
  if (ranked.length < 3) throw new Error(`too few coco-dev images with people in ${images}`);
  return ranked.map((r) => r.image);
}

// A small static file server for the demo and the end-to-end tests.
//
// Cross-origin isolation (SharedArrayBuffer, hence threads) needs two headers on the page,
//   Cross-Origin-Opener-Policy: same-origin
//   Cross-Origin-Embedder-Policy: require-corp
// and, under require-corp, every subresource must allow being embedded: same-origin ones get
//   Cross-Origin-Resource-Policy: same-origin.
// `isolated: false` leaves all three out (the page then runs single-threaded).
//
//   node web/server.js [--port N] [--host H] [--weights FILE] [--no-isolation]
//
// serves web/ at /, pkg/ at /pkg/ and the weight file at /weights/effyolo-l1.safetensors
// (default: weights/effyolo-l1.safetensors, else the synthetic reference weights that
// web/weights.sh writes under target/weights/).

import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.ico': 'image/x-icon',
  '.y4m': 'video/x-yuv4mpeg',
  '.txt': 'text/plain; charset=utf-8',
};

export const ISOLATION_HEADERS = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

/**
 * Starts a static server.
 * @param {object} options
 * @param {Record<string, string>} options.mounts URL prefix ('/' or '/pkg/') -> directory, or
 *   an exact URL path -> file. The longest matching prefix wins.
 * @param {boolean} [options.isolated=true] send the COOP/COEP/CORP headers
 * @param {string} [options.host='127.0.0.1']
 * @param {number} [options.port=0] 0 picks a free port
 * @returns {Promise<{ url: string, close: () => Promise<void> }>}
 */
export async function startServer({ mounts, isolated = true, host = '127.0.0.1', port = 0 }) {
  const routes = Object.entries(mounts)
    .map(([prefix, target]) => [prefix, path.resolve(target)])
    .sort((a, b) => b[0].length - a[0].length);

  const server = http.createServer(async (req, res) => {
    const headers = { 'Cache-Control': 'no-cache', ...(isolated ? ISOLATION_HEADERS : {}) };
    const send = (status, body) => {
      res.writeHead(status, { ...headers, 'Content-Type': 'text/plain; charset=utf-8' });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return send(405, 'method not allowed\n');
    }
    let pathname;
    try {
      pathname = decodeURIComponent(new URL(req.url, 'http://localhost').pathname);
    } catch {
      return send(400, 'bad request\n');
    }
    const file = await resolveFile(routes, pathname);
    if (!file) {
      return send(404, `not found: ${pathname}\n`);
    }
    const type = TYPES[path.extname(file.path).toLowerCase()] ?? 'application/octet-stream';
    res.writeHead(200, { ...headers, 'Content-Type': type, 'Content-Length': file.size });
    if (req.method === 'HEAD') {
      return res.end();
    }
    createReadStream(file.path)
      .on('error', () => res.destroy())
      .pipe(res);
  });

  await listen(server, host, port);
  const address = server.address();
  return {
    url: `http://${host}:${address.port}/`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
    server,
  };
}

/** The file a URL path names, or null (also for paths that climb out of their mount). */
async function resolveFile(routes, pathname) {
  for (const [prefix, target] of routes) {
    let candidate;
    if (prefix.endsWith('/')) {
      if (!pathname.startsWith(prefix)) continue;
      candidate = path.resolve(target, '.' + path.posix.normalize('/' + pathname.slice(prefix.length)));
      if (candidate !== target && !candidate.startsWith(target + path.sep)) return null;
    } else if (pathname === prefix) {
      candidate = target;
    } else {
      continue;
    }
    try {
      let info = await stat(candidate);
      if (info.isDirectory()) {
        candidate = path.join(candidate, 'index.html');
        info = await stat(candidate);
      }
      return info.isFile() ? { path: candidate, size: info.size } : null;
    } catch {
      return null;
    }
  }
  return null;
}

function listen(server, host, port) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

// ---- command line: the demo server -------------------------------------------------------

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/**
 * The weight files the demo serves when none is named: the shipped one if it exists, else the
 * synthetic reference weights that web/weights.sh writes.
 */
export const WEIGHT_FILES = {
  shipped: path.join(repo, 'weights', 'effyolo-l1.safetensors'),
  synthetic: path.join(repo, 'target', 'weights', 'effyolo-l1-synthetic.safetensors'),
};

/** URL path -> file/directory map of the demo. */
export function demoMounts(weightsFile) {
  return {
    '/': path.join(repo, 'web'),
    '/pkg/': path.join(repo, 'pkg'),
    '/weights/effyolo-l1.safetensors': weightsFile,
  };
}

async function main(argv) {
  const args = { port: 8080, host: '127.0.0.1', weights: null, isolated: true };
  for (let i = 0; i < argv.length; i++) {
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${argv[i]} needs a value`);
      return argv[++i];
    };
    switch (argv[i]) {
      case '--port': args.port = Number(value()); break;
      case '--host': args.host = value(); break;
      case '--weights': args.weights = path.resolve(value()); break;
      case '--no-isolation': args.isolated = false; break;
      default: throw new Error(`unknown argument ${argv[i]}`);
    }
  }
  let weights = args.weights;
  if (!weights) {
    for (const candidate of Object.values(WEIGHT_FILES)) {
      if (await stat(candidate).then((s) => s.isFile(), () => false)) {
        weights = candidate;
        break;
      }
    }
  }
  if (!weights) {
    const names = Object.values(WEIGHT_FILES).map((f) => path.relative(repo, f));
    throw new Error(`no weight file: neither ${names.join(' nor ')} exists (web/weights.sh writes the second)`);
  }
  // A busy port is common on a dev machine: try the next few.
  let served;
  for (let port = args.port; ; port++) {
    try {
      served = await startServer({ mounts: demoMounts(weights), isolated: args.isolated, host: args.host, port });
      break;
    } catch (error) {
      if (error.code !== 'EADDRINUSE' || port >= args.port + 10 || args.port === 0) throw error;
    }
  }
  console.log(`effyolo demo: weights ${path.relative(process.cwd(), weights) || weights}`);
  console.log(`effyolo demo: ${args.isolated ? 'cross-origin isolated' : 'NOT cross-origin isolated (single-threaded)'}`);
  console.log(`effyolo demo: open ${served.url}`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).catch((error) => {
    console.error(`error: ${error.message}`);
    process.exit(1);
  });
}

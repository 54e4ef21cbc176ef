// Serving the benchmark page: the demo's server (web/server.js) with COOP/COEP, so the
// threaded builds can run. The page needs no weight file (its models are synthetic).
import path from 'node:path';

import { startServer } from '../../web/server.js';
import { repo } from './env.js';

export function startBenchServer({ isolated = true } = {}) {
  return startServer({
    mounts: { '/': path.join(repo, 'web'), '/pkg/': path.join(repo, 'pkg') },
    isolated,
  });
}

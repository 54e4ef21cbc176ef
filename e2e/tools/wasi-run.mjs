// Runs a wasm32-wasip1 program (a benchmark, a test binary) in Node's V8 through node:wasi,
// the engine of Chromium. Arguments after the module go to the program; the current directory
// is preopened as `.`; the exit status is the program's.
//
//   node --experimental-wasm-relaxed-simd e2e/tools/wasi-run.mjs module.wasm [args...]
//
// Node 20's V8 needs `--experimental-wasm-relaxed-simd` for a module built with
// `+relaxed-simd` (Chromium ships the proposal enabled); SIMD128 needs no flag.
import { readFile } from 'node:fs/promises';
import { argv, env, exit } from 'node:process';
import { WASI } from 'node:wasi';

const [modulePath, ...args] = argv.slice(2);
if (!modulePath) {
  console.error('usage: node wasi-run.mjs module.wasm [args...]');
  exit(2);
}
const wasi = new WASI({
  version: 'preview1',
  args: [modulePath, ...args],
  env,
  preopens: { '.': '.' },
  returnOnExit: true,
});
const module = await WebAssembly.compile(await readFile(modulePath));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
exit(wasi.start(instance));

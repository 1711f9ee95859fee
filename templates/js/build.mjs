// Builds dist/module.wasm from src/main.js with componentize-js (a JavaScript engine
// and this module's code, compiled into one WebAssembly component of nexum's world).
// Installs the pinned componentize-js first when node_modules lacks it: `npm run build`
// is the only command needed after `nexum new`.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(fileURLToPath(import.meta.url));
const PACKAGE = '@bytecodealliance/componentize-js';
const pinned = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).devDependencies[PACKAGE];

/** The installed componentize-js version, or undefined. */
function installed() {
  try {
    return JSON.parse(readFileSync(join(root, 'node_modules', PACKAGE, 'package.json'), 'utf8')).version;
  } catch {
    return undefined;
  }
}

if (installed() !== pinned) {
  console.log(`installing ${PACKAGE}@${pinned} …`);
  // npm is npm.cmd on Windows, which only a shell runs.
  execFileSync('npm', ['install', '--no-audit', '--no-fund'], { cwd: root, stdio: 'inherit', shell: process.platform === 'win32' });
  if (installed() !== pinned) {
    throw new Error(`npm installed ${PACKAGE} ${installed() ?? '(nothing)'}, not ${pinned}: check package.json`);
  }
}

const witPath = join(root, 'wit');
if (!existsSync(join(witPath, 'world.wit'))) {
  console.error("wit/ is missing: it holds nexum's WIT (nexum new copies it; else copy wit/host/*.wit of the nexum repository)");
  process.exit(1);
}

const started = performance.now();
const { componentize } = await import(PACKAGE);
const { component } = await componentize({
  sourcePath: join(root, 'src', 'main.js'),
  witPath,
  worldName: 'event-module',
  // nexum serves no HTTP: without these the component would import wasi:http.
  disableFeatures: ['http', 'fetch-event'],
});
mkdirSync(join(root, 'dist'), { recursive: true });
writeFileSync(join(root, 'dist', 'module.wasm'), component);
const seconds = ((performance.now() - started) / 1000).toFixed(1);
console.log(`dist/module.wasm: ${(component.length / 1e6).toFixed(1)} MB in ${seconds} s`);

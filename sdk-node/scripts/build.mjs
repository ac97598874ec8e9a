// `npm run build`: the contract module (gen-contract.mjs), then the same sources compiled
// twice — ES modules to dist/ and CommonJS to dist/cjs/ (marked by its own package.json,
// since the package says "type": "module") — so `import` and `require()` both find a
// build of their own (package.json "exports").
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const sdkRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const run = (script, ...args) => execFileSync(process.execPath, [script, ...args], { cwd: sdkRoot, stdio: 'inherit' });

run(join(sdkRoot, 'scripts', 'gen-contract.mjs'));
rmSync(join(sdkRoot, 'dist'), { recursive: true, force: true });
run(tsc, '-p', 'tsconfig.json');
run(tsc, '-p', 'tsconfig.cjs.json');
mkdirSync(join(sdkRoot, 'dist', 'cjs'), { recursive: true });
writeFileSync(join(sdkRoot, 'dist', 'cjs', 'package.json'), '{ "type": "commonjs" }\n');

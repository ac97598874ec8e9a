// Keeps sdk-node/proto/ an exact copy of the repository's contract (../proto).
//
// The npm package must carry its own .proto files to be publishable, so the copies are
// committed. `node scripts/sync-proto.mjs` refreshes them; `--check` changes nothing and
// exits 1 when any copy differs from, lacks, or outlives its source — check.sh runs it so
// the copies can never silently drift from the contract.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const sdkRoot = join(here, '..');
const source = join(sdkRoot, '..', 'proto');
const target = join(sdkRoot, 'proto');
// Every .proto in these folders is part of the contract the SDK ships.
const folders = ['switchyard/v1', 'google/rpc'];

function protoFiles(root) {
  const files = [];
  for (const folder of folders) {
    const dir = join(root, folder);
    if (!existsSync(dir)) continue;
    for (const name of readdirSync(dir).sort()) {
      if (name.endsWith('.proto')) files.push(join(folder, name));
    }
  }
  return files;
}

const check = process.argv.includes('--check');
if (!existsSync(source)) {
  console.error(`sync-proto: source folder ${source} not found`);
  process.exit(1);
}
const wanted = protoFiles(source);
const present = new Set(protoFiles(target));
const problems = [];
for (const file of wanted) {
  const content = readFileSync(join(source, file));
  const copy = present.has(file) ? readFileSync(join(target, file)) : undefined;
  present.delete(file);
  if (copy !== undefined && copy.equals(content)) continue;
  if (check) {
    problems.push(`${copy === undefined ? 'missing' : 'differs'}: proto/${file}`);
  } else {
    mkdirSync(dirname(join(target, file)), { recursive: true });
    writeFileSync(join(target, file), content);
    console.log(`sync-proto: updated proto/${file}`);
  }
}
for (const stale of present) {
  if (check) problems.push(`not in ${relative(sdkRoot, source)}: proto/${stale}`);
  else {
    rmSync(join(target, stale));
    console.log(`sync-proto: removed proto/${stale}`);
  }
}
if (problems.length > 0) {
  console.error('sync-proto: sdk-node/proto has drifted from the contract; run `npm run sync-proto`:');
  for (const p of problems) console.error(`  ${p}`);
  process.exit(1);
}
console.log(`sync-proto: ${wanted.length} proto files ${check ? 'match' : 'in sync with'} ${relative(sdkRoot, source)}/`);

#!/usr/bin/env node
/**
 * A production build must not expose the app's store (it holds DICOM patient fields) or any test hook to the page:
 * no `cxrStudio` global in any script of the build. Usage: node scripts/check-prod-build.mjs [DIST=dist]
 * (the browser tests run against `vite build --mode test`, which has the hook; tests/run-all.sh builds both).
 */
import fs from 'node:fs';
import path from 'node:path';

const dist = path.resolve(process.argv[2] ?? 'dist');
if (!fs.existsSync(path.join(dist, 'index.html'))) {
  console.error(`check-prod-build: ${dist} has no index.html (build it first)`);
  process.exit(2);
}
const files = (d) => fs.readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(path.join(d, e.name)) : [path.join(d, e.name)]));
const code = files(dist).filter((f) => /\.(m?js|html)$/.test(f) && !f.includes(`${path.sep}models${path.sep}`));
const bad = code.filter((f) => fs.readFileSync(f, 'utf8').includes('cxrStudio'));
if (bad.length) {
  console.error(`check-prod-build: the production build exposes the store (cxrStudio) in ${bad.map((f) => path.relative(dist, f)).join(', ')}`);
  process.exit(1);
}
console.log(`check-prod-build: ${code.length} scripts in ${path.relative(process.cwd(), dist) || '.'}, no test hook`);

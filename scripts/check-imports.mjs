#!/usr/bin/env node
/**
 * The house's import rules, checked on the TypeScript sources (no build; a few milliseconds):
 *  1. no import cycles among runtime imports (`import type` is erased by the compiler and cannot form one);
 *  2. dependencies run one way (views -> store -> services/workers -> lib; platform adapters beside lib), as LAYERS
 *     below says, for every import including type-only ones;
 *  3. app/lib and app/services import no UI, worker-RPC, storage or Node-only package (PURE_FORBIDDEN);
 *  4. app/store and app/cli neither import onnxruntime-web nor create an engine (models run through app/services).
 * Usage: node scripts/check-imports.mjs [ROOT]. Prints a summary; exits 1 with each violation listed.
 * Why not madge/dependency-cruiser: both resolve TypeScript through the `typescript` package's JS API, which
 * TypeScript 7 (the native compiler this project uses) no longer ships.
 */
import fs from 'node:fs';
import path from 'node:path';

const root = path.resolve(process.argv[2] ?? '.');
const TOPS = ['app', 'workers'];

/** Layer of a file (first match), and the layers it may import. */
const LAYERS = [
  ['lib', /^app\/lib\//, ['lib']],
  ['platform/browser', /^app\/platform\/browser\//, ['platform/browser', 'lib']],
  ['platform/node', /^app\/platform\/node\//, ['platform/node', 'lib']],
  ['services', /^app\/services\//, ['services', 'lib']],
  ['workers', /^workers\//, ['lib', 'platform/browser']],
  ['store', /^app\/store\//, ['store', 'services', 'platform/browser', 'lib']],
  ['cli', /^app\/cli\//, ['cli', 'services', 'platform/node', 'lib']],
  ['views', /^app\/(components\/|App\.tsx$|main\.tsx$)/, ['views', 'store', 'lib']],
];
const NODE_BUILTIN = /^(node:|fs$|path$|os$|url$|child_process$|worker_threads$|crypto$|stream$|buffer$)/;
const PURE_FORBIDDEN = /^(react|react-dom|zustand|comlink|idb-keyval|pngjs|jpeg-js|virtual:)/;

function layerOf(rel) {
  for (const [name, re, allowed] of LAYERS) if (re.test(rel)) return { name, allowed };
  return null;
}

function walk(dir, out = []) {
  if (!fs.existsSync(dir)) return out;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else if (/\.(ts|tsx)$/.test(e.name) && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

function resolve(from, spec) {
  const base = path.resolve(path.dirname(from), spec);
  for (const c of [base, `${base}.ts`, `${base}.tsx`, path.join(base, 'index.ts'), path.join(base, 'index.tsx')]) {
    if (fs.existsSync(c) && fs.statSync(c).isFile()) return c;
  }
  return null;
}

// import/export ... from '...', side-effect imports, and dynamic import('...') with a literal.
const STATIC = /(?:^|[\n;])\s*(import|export)\s+(type\s+)?([\s\S]*?)\s*from\s*['"]([^'"]+)['"]/g;
const BARE = /(?:^|[\n;])\s*import\s*['"]([^'"]+)['"]/g;
const DYNAMIC = /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g;

/** Text without comments (so examples in doc comments are not imports); strings are kept. */
function stripComments(src) {
  return src.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
}

const files = TOPS.flatMap((t) => walk(path.join(root, t)));
const graph = new Map();
const problems = [];
let nImports = 0;
for (const f of files) {
  const rel = path.relative(root, f).split(path.sep).join('/');
  const src = stripComments(fs.readFileSync(f, 'utf8'));
  const deps = [];
  for (const m of src.matchAll(STATIC)) {
    // `import { type A, type B }` is type-only too.
    const clause = m[3];
    const typeOnly = !!m[2] || (/^\{[^}]*\}$/.test(clause.trim()) && clause.replace(/[{}\s]/g, '').split(',').filter(Boolean).every((x) => x.startsWith('type')));
    deps.push({ spec: m[4], typeOnly, clause });
  }
  for (const m of src.matchAll(BARE)) deps.push({ spec: m[1], typeOnly: false });
  for (const m of src.matchAll(DYNAMIC)) deps.push({ spec: m[1], typeOnly: false });
  const layer = layerOf(rel);
  if (!layer) problems.push(`${rel}: in no layer (add it to LAYERS in scripts/check-imports.mjs)`);
  // 4. the store and the CLIs run models only through app/services (same engines, verified files, variant choice):
  //    they neither import onnxruntime-web nor create an engine (createXxxEngine lives behind services/engines.ts).
  if (layer && (layer.name === 'store' || layer.name === 'cli')) {
    for (const d of deps) {
      if (d.spec === 'onnxruntime-web') problems.push(`${rel}: ${layer.name} must not import onnxruntime-web (run models through app/services)`);
      const made = d.clause && !d.typeOnly ? d.clause.match(/\bcreate[A-Z]\w*Engine\b/) : null;
      if (made) problems.push(`${rel}: ${layer.name} must not create an engine (${made[0]}); use app/services (engines.ts, inference.ts)`);
    }
  }
  const runtime = new Set();
  for (const d of deps) {
    nImports++;
    if (!d.spec.startsWith('.')) {
      if (layer && (layer.name === 'lib' || layer.name === 'services')) {
        if (NODE_BUILTIN.test(d.spec) || PURE_FORBIDDEN.test(d.spec)) problems.push(`${rel}: ${layer.name} must not import '${d.spec}'`);
        if (d.spec === 'onnxruntime-web' && !d.typeOnly) problems.push(`${rel}: ${layer.name} may import only types from onnxruntime-web (the platform supplies ORT)`);
      }
      if (layer?.name === 'platform/browser' && NODE_BUILTIN.test(d.spec)) problems.push(`${rel}: browser code imports Node's '${d.spec}'`);
      continue;
    }
    const target = resolve(f, d.spec);
    if (!target) {
      problems.push(`${rel}: cannot resolve '${d.spec}'`);
      continue;
    }
    const trel = path.relative(root, target).split(path.sep).join('/');
    const tl = layerOf(trel);
    if (layer && tl && !layer.allowed.includes(tl.name)) problems.push(`${rel} (${layer.name}) imports ${trel} (${tl.name})`);
    if (!d.typeOnly) runtime.add(target);
  }
  graph.set(f, runtime);
}

// Tarjan's strongly connected components over runtime imports.
const index = new Map(), low = new Map(), onStack = new Set(), stack = [], cycles = [];
let counter = 0;
function strong(v) {
  index.set(v, counter);
  low.set(v, counter++);
  stack.push(v);
  onStack.add(v);
  for (const w of graph.get(v) ?? []) {
    if (!index.has(w)) {
      strong(w);
      low.set(v, Math.min(low.get(v), low.get(w)));
    } else if (onStack.has(w)) low.set(v, Math.min(low.get(v), index.get(w)));
  }
  if (low.get(v) === index.get(v)) {
    const comp = [];
    let w;
    do {
      w = stack.pop();
      onStack.delete(w);
      comp.push(path.relative(root, w));
    } while (w !== v);
    if (comp.length > 1 || (graph.get(v) ?? new Set()).has(v)) cycles.push(comp.sort());
  }
}
for (const v of graph.keys()) if (!index.has(v)) strong(v);
for (const c of cycles) problems.push(`import cycle: ${c.join(' <-> ')}`);

console.log(`check-imports: ${files.length} modules, ${nImports} imports, ${cycles.length} cycles, ${problems.length - cycles.length} layer violations`);
if (problems.length) {
  for (const p of problems) console.error(`  ${p}`);
  process.exit(1);
}

#!/usr/bin/env bash
# Every test of the project, in order of cost: TypeScript types, import rules, unit tests in Node, the production build,
# browser tests in Debian's Chromium against that build, and export-scripts' Python tests.
set -euo pipefail
cd "$(dirname "$0")/.."
export ONNXRUNTIME_NODE_INSTALL=skip

step() { echo; echo "=== $1"; }

step "typecheck (app, workers, tests; and app/lib without DOM/WebWorker libs)"
npx tsc -p tsconfig.json --noEmit
npx tsc -p tsconfig.lib.json

step "import rules (no cycles, one-way layers; TypeScript and export-scripts Python)"
node scripts/check-imports.mjs
.venv/bin/python export-scripts/tests/test_imports.py

step "unit tests (vitest, Node)"
npx vitest run

step "fuzz: 300 fixed-seed mutations of ../shared files through the shared decode path (fails on a crash, hang or over-memory)"
if [ -n "${CI:-}" ] || [ -d "${CXR_SHARED:-../shared}/data" ]; then npx tsx scripts/fuzz.ts --n 300 --seed 20261207 --quiet; else echo "../shared missing (set CXR_SHARED): fuzz not run"; fi

step "production build (checked: no test hook, no store on window), then the test build the browser tests use"
npx vite build --outDir dist-prod --emptyOutDir
node scripts/check-prod-build.mjs dist-prod
npx vite build --mode test

step "browser tests (Playwright, /usr/bin/chromium)"
npx playwright test

step "export-scripts tests (pytest)"
.venv/bin/python -m pytest export-scripts/tests -q

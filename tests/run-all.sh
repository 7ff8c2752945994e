#!/usr/bin/env bash
# Every test of the project, in order of cost: TypeScript types, unit tests in Node, the production build,
# browser tests in Debian's Chromium against that build, and export-scripts' Python tests.
set -euo pipefail
cd "$(dirname "$0")/.."
export ONNXRUNTIME_NODE_INSTALL=skip

step() { echo; echo "=== $1"; }

step "typecheck"
npx tsc -p tsconfig.json --noEmit

step "unit tests (vitest, Node)"
npx vitest run

step "production build"
npx vite build

step "browser tests (Playwright, /usr/bin/chromium)"
npx playwright test

step "export-scripts tests (pytest)"
.venv/bin/python -m pytest export-scripts/tests -q

#!/usr/bin/env bash
# Sets up a fresh machine for cxr-studio: Node packages, Debian's Chromium (browser tests), and the
# project-local Python environment for export-scripts (.venv). Safe to run again: each step skips what is there.
set -euo pipefail
cd "$(dirname "$0")/.."

# Node packages. onnxruntime-node (pulled in transitively by some packages) downloads binaries in its install
# script, which fails offline; the app never uses it.
export ONNXRUNTIME_NODE_INSTALL=skip
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  # Exactly the committed lock, never rewritten. The lock lists every platform's optional native packages
  # (rollup's, rolldown's, esbuild's): regenerate it with `npm install --package-lock-only` in a checkout WITHOUT
  # node_modules, since an `npm install` over an existing node_modules drops the other platforms' entries and
  # `npm ci` then refuses the lock ("Missing: @rollup/rollup-… from lock file").
  npm ci --no-audit --no-fund
fi

# Browser tests drive Debian's Chromium; Playwright must never download its own browser.
if ! command -v /usr/bin/chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
  fi
fi

# Python 3.11 for export-scripts, in a project-local virtual environment.
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
if ! .venv/bin/python -c "import torch, onnxruntime, open_clip, diffusers, peft, ray.data, pyarrow, skimage, cxr_export" >/dev/null 2>&1; then
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -r export-scripts/requirements.txt
  .venv/bin/pip install -q --no-deps -e export-scripts
fi
echo "setup: done (node $(node --version), $(.venv/bin/python --version), $(/usr/bin/chromium --version 2>/dev/null | head -1))"

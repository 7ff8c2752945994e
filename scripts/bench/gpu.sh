#!/usr/bin/env bash
# The same bench headless on a machine with a GPU: onnxruntime-web's WebGPU EP in plain Node through Dawn (npm
# `webgpu`, dawn.node) next to PyTorch CUDA, and the CPU backends, in one run (scripts/bench/run.ts --backends).
#
#   bash scripts/bench/gpu.sh prepare   # on a CPU machine with the registries: fills .gpu-bench/ (ignored by git)
#   bash scripts/bench/gpu.sh run [--engine jsep|native|both] [run.ts args]
#                                       # on the GPU machine, from the repo root, with .gpu-bench/ carried along
#
# --engine (default both): which onnxruntime-web WebGPU engine(s) (app/lib/runtime/webgpu-engine.ts): JSEP, the
# native WebGPU EP, or both one after the other (CXR_WEBGPU_ENGINE for scripts/bench/webgpu-child.ts). The first
# engine's run also measures the CPU backends and PyTorch CUDA (bench-results/gpu/<engine>/); a second engine adds
# only its WebGPU rows, so the two engines sit next to PyTorch CUDA from the same machine.
#
# prepare: `npm pack webgpu@0.6.2` (dawn.node prebuilt), the Vulkan / GL loader .debs (`apt-get download`, the
# GPU machine has no network), and this machine's node binary, xz-compressed. run: unpacks them, points
# VK_DRIVER_FILES at the NVIDIA ICD, checks the adapter, and runs the bench with
# --backends wasm,ort,torch,webgpu,torch-cuda into bench-results/gpu/. What worked on an H100 is in
# ../shared/notes/webgpu-here.md.
#
# Status: written for issue 12.5, engines added for issue 21.4; NOT RUN: no GPU machine was lent to either session.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
B="$ROOT/.gpu-bench"
case "${1:-}" in
  prepare)
    mkdir -p "$B/debs" "$B/npm"
    (cd "$B/npm" && npm pack webgpu@0.6.2 >/dev/null && ls)
    (cd "$B/debs" && apt-get download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 2>&1 | tail -1)
    xz -T2 -c "$(command -v node)" > "$B/node.xz"
    du -sh "$B"
    ;;
  run)
    export PATH="$B/bin:$PATH"
    if ! command -v node >/dev/null; then mkdir -p "$B/bin" && xz -dc "$B/node.xz" > "$B/bin/node" && chmod +x "$B/bin/node"; fi
    mkdir -p "$B/root"
    for d in "$B"/debs/*.deb; do dpkg-deb -x "$d" "$B/root"; done
    export LD_LIBRARY_PATH="$B/root/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}"
    export VK_DRIVER_FILES=${VK_DRIVER_FILES:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}
    if [ ! -d node_modules/webgpu ]; then mkdir -p node_modules/webgpu && tar -xzf "$B"/npm/webgpu-*.tgz -C node_modules/webgpu --strip-components=1; fi
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
    shift
    ENGINE=both
    if [ "${1:-}" = "--engine" ]; then ENGINE=${2:?--engine jsep|native|both}; shift 2; fi
    case "$ENGINE" in
      both) ENGINES="native jsep" ;;
      jsep|native) ENGINES=$ENGINE ;;
      *) echo "gpu.sh: --engine must be jsep, native or both (got $ENGINE)" >&2; exit 2 ;;
    esac
    BACKENDS=wasm,ort,torch,webgpu,torch-cuda
    for E in $ENGINES; do
      CXR_WEBGPU_ENGINE=$E node node_modules/.bin/tsx scripts/bench/run.ts --backends "$BACKENDS" --threads "${THREADS:-16}" \
        --out "bench-results/gpu/$E" "$@"
      BACKENDS=webgpu
    done
    ;;
  *)
    sed -n '2,/^# Status/p' "$0"; exit 2 ;;
esac

#!/usr/bin/env bash
# Reproduces public/models/cxr-clip (issue 16) on CPU: caches pneumonia-vit's locked features (4 views per Kermany
# train image, 12 per adult training image), trains the head + CLIP text tower (SigLIP loss, label-derived
# positives), keeps the best step on the classifier's validation split, exports fp32 / int8 / fp16 with parity,
# measures the card on Kermany test + lung-sam's held-out adult images with held-out prompts, writes the goldens.
# Resumable: when --max-minutes stops it, run this again and it continues from export-scripts/runs/cxr-clip.
set -euo pipefail
cd "$(dirname "$0")/../export-scripts"
nice -n 5 ../.venv/bin/python -m cxr_export train-clip --out runs/cxr-clip --threads 1 \
  --steps 500 --batch 512 --captions 96 --eval-every 25 --views 4 --adult-views 12 --seed 0 \
  --max-minutes "${MAX_MINUTES:-40}" --export-to ../public/models --goldens ../tests/goldens "$@"

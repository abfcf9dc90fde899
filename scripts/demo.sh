#!/usr/bin/env bash
# The main job on a fresh machine: set up, start the local Neo4j, build the circuits of two dog classes from
# real ImageNet images with the offline EfficientNet-Lite0, write them into Neo4j, and show query results.
# Settings are reduced so that it finishes in minutes on a laptop CPU; drop them for the paper's defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh

images="${NEURFLOW_DEMO_IMAGES:-../shared/data/imagewoof-val}"
[ -d "$images" ] || images=tests/data/imagewoof
neurflow db start
neurflow-ingest --model efficientnet-lite0 --classes "golden retriever,Samoyed" --images "$images" \
  --out circuits --layers _fc,_blocks.15,_blocks.14,_blocks.13 --tau 8 --k 20 --steps 16 --max-images 4
echo
echo "== Which neurons and groups do both classes use?"
neurflow query concept-reuse --param limit=5
echo
echo "== The most influential groups of Samoyed"
neurflow query top-groups --param class=Samoyed --param limit=3
echo
echo "The atlas in a browser: . .venv/bin/activate && neurflow serve  (then http://127.0.0.1:8765/)"
echo "Explore in Neo4j Browser: http://127.0.0.1:7474/browser/ (user neo4j, password: neurflow db password)"
echo "Circuit pictures: circuits/*/circuit.png. Stop the server with: neurflow db stop"

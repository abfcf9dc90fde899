#!/usr/bin/env bash
# Prepares circuit-tracer's attribution-graph viewer for the export test (tests/serve/test_export_viewer.py),
# offline: its package (graph schema, local server, page and scripts) from the circuit-tracer wheel on PyPI,
# unpacked, not installed (its torch/transformers dependencies are not needed for these), and, for the
# libraries the page loads from CDNs (transformer-circuits.pub, unpkg), the same libraries from the npm
# registry: d3 7, d3-collection and d3-jetpack (their helper build is not published: npm's d3-jetpack stands in),
# dagre 0.8.5 and pako 2.1.0. Into .neurflow/circuit-tracer-viewer/ (or $1); idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${1:-.neurflow/circuit-tracer-viewer}"
[ -f "$target/ready" ] && exit 0
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python -m pip download -q --disable-pip-version-check --no-deps circuit-tracer==0.5.0 -d "$work"
python -m zipfile -e "$work"/circuit_tracer-0.5.0-py3-none-any.whl "$work/wheel"
mkdir -p "$target/lib"
rm -rf "$target/circuit_tracer" && cp -r "$work/wheel/circuit_tracer" "$target/circuit_tracer"  # imported from here
(cd "$work" && for p in d3@7.9.0 d3-collection@1.0.7 d3-jetpack@2.2.0 dagre@0.8.5 pako@2.1.0; do
  npm pack --silent "$p" >/dev/null; done)
for p in d3-7.9.0:dist/d3.min.js d3-collection-1.0.7:dist/d3-collection.min.js \
         d3-jetpack-2.2.0:build/d3-jetpack.cjs dagre-0.8.5:dist/dagre.min.js pako-2.1.0:dist/pako.min.js; do
  name="${p%%:*}" file="${p#*:}"
  mkdir -p "$work/$name" && tar xzf "$work/$name.tgz" -C "$work/$name"
  cp "$work/$name/package/$file" "$target/lib/$name.js"
done
touch "$target/ready"
echo "circuit-tracer's viewer -> $target"

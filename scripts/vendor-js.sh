#!/usr/bin/env bash
# Refreshes the JavaScript `neurflow serve` ships (neurflow/serve/static/vendor/) from the npm registry: the
# version pinned here, checked against npm's sha512 integrity, so the wheel needs no CDN at run time.
set -euo pipefail
cd "$(dirname "$0")/.."
version=3.35.0
integrity="sha512-sMvBIXiGMnhkCaWz2R06FwF/27MNlS+Tqvi17foO9UhnUg3XGZccKjxsvEqQFAQYMSSZmN5SxYzUYlQ0DOJJ3g=="
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack "cytoscape@$version" --silent >/dev/null)
got="sha512-$(openssl dgst -sha512 -binary "$work/cytoscape-$version.tgz" | base64 -w0)"
[ "$got" = "$integrity" ] || { echo "cytoscape $version: integrity $got, expected $integrity" >&2; exit 1; }
tar xzf "$work/cytoscape-$version.tgz" -C "$work"
cp "$work/package/dist/cytoscape.min.js" neurflow/serve/static/vendor/cytoscape.min.js
cp "$work/package/LICENSE" neurflow/serve/static/vendor/cytoscape.LICENSE
echo "cytoscape $version -> neurflow/serve/static/vendor/ ($(sha256sum neurflow/serve/static/vendor/cytoscape.min.js | cut -c1-16))"

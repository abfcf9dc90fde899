#!/usr/bin/env bash
# The test command. Sets up .venv, starts a throwaway local Neo4j 5.26 with its own data folder and ports
# (a user's graph is never touched), runs ruff, pyright and pytest, then stops that Neo4j.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k store`.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh

data="${NEURFLOW_TEST_NEO4J_DATA:-$PWD/.neurflow/test-neo4j}"
bolt="${NEURFLOW_TEST_BOLT_PORT:-7688}"
http="${NEURFLOW_TEST_HTTP_PORT:-7475}"
# The server's own settings, so that `neurflow db status` and its tests see this server, not the user's.
export NEURFLOW_NEO4J_DATA="$data" NEURFLOW_NEO4J_BOLT_PORT="$bolt" NEURFLOW_NEO4J_HTTP_PORT="$http"
neurflow db start
trap 'neurflow db stop || true' EXIT
export NEO4J_URI="bolt://127.0.0.1:$bolt" NEO4J_USER=neo4j NEO4J_DATABASE=neo4j
NEO4J_PASSWORD="$(neurflow db password)"
export NEO4J_PASSWORD

echo "== ruff"
ruff check neurflow ingest tests bench
echo "== pyright"
pyright
echo "== pytest"
python -m pytest "$@"

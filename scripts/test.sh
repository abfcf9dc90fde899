#!/usr/bin/env bash
# The test command: sets up .venv, runs ruff, pyright, the import contracts (lint-imports) and pytest.
# When the selected tests include Neo4j ones (marker `neo4j`), it first starts a throwaway local Neo4j 5.26
# with its own data folder and ports (a user's graph is never touched) and stops it at the end.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k store`; the fast tier, without Java or Neo4j:
#   bash scripts/test.sh -m "not slow and not neo4j"
set -euo pipefail
cd "$(dirname "$0")/.."
NEURFLOW_SETUP_JAVA=later . scripts/setup.sh

echo "== ruff"
ruff check neurflow ingest tests bench
echo "== pyright"
pyright
echo "== import contracts"
lint-imports --no-cache --no-logo

# Do the selected tests hold a Neo4j one? Not when the marker expression excludes `neo4j` (the fast tier);
# otherwise ask pytest, with the selection narrowed to the `neo4j` marker (exit code 5: nothing collected).
selection=() marks=""
while (($#)); do
  case "$1" in
    -m | --markexpr) marks="${2:-}"; shift 2 || shift ;;
    --markexpr=*) marks="${1#--markexpr=}"; shift ;;
    -m*) marks="${1#-m}"; shift ;;
    *) selection+=("$1"); shift ;;
  esac
done
marks_args=()
[ -n "$marks" ] && marks_args=(-m "$marks")

excludes() {  # true when no assignment of the other markers lets "$2" hold with marker "$1" set
  python - "$1" "$2" 2>/dev/null <<'PY'
import itertools, re, sys
marker, expr = sys.argv[1], sys.argv[2]
names = sorted(set(re.findall(r"[A-Za-z_]\w*", expr)) - {"and", "or", "not"} | {marker})
others = [n for n in names if n != marker]
if not expr.strip() or not re.fullmatch(r"[\w\s()]*", expr) or len(others) > 10:
    sys.exit(1)  # not a plain expression of marker names: let pytest decide
for values in itertools.product((False, True), repeat=len(others)):
    if eval(expr, {"__builtins__": {}}, {marker: True, **dict(zip(others, values))}):
        sys.exit(1)
PY
}

selects() {  # does the selection hold a test marked "$1"? (pytest exits 5 when it collects nothing)
  excludes "$1" "$marks" && return 1
  set +e
  python -m pytest --collect-only -q -p no:cacheprovider "${selection[@]}" -m "$1${marks:+ and ($marks)}" \
    >/dev/null 2>&1
  local code=$?
  set -e
  [ "$code" != 5 ]
}

if selects neo4j; then
  ensure_java
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
else
  echo "== no Neo4j test selected: no server started"
fi

# Browser tests (marker `browser`) selected? Then Debian's chromium must be there.
if selects browser; then
  ensure_chromium
  bash scripts/circuit-tracer-viewer.sh  # circuit-tracer's viewer, for the export test (PyPI and npm)
fi

echo "== pytest"
python -m pytest --durations=15 "${selection[@]}" "${marks_args[@]}"  # the slowest, so that time is seen

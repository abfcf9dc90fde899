#!/usr/bin/env bash
# Sourced by the other scripts: a .venv (reusing packages already installed system-wide) with neurflow,
# its test tools and the offline EfficientNet-Lite0, plus a check for Java and Maven (the local Neo4j).
# A script that may not need Neo4j sets NEURFLOW_SETUP_JAVA=later before sourcing this and calls
# `ensure_java` when it does (scripts/test.sh: the fast tier runs without Java).
set -euo pipefail
if [ ! -x .venv/bin/python ]; then
  python3 -m venv --system-site-packages .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
# pip runs again only when pyproject.toml or the torch pins change (a stamp in .venv; delete it to force).
torch_pins="torch==2.14.1 torchvision==0.29.1"
pyproject_hash="$(python -c 'import hashlib; print(hashlib.sha256(open("pyproject.toml", "rb").read()).hexdigest())')"
setup_stamp="$pyproject_hash $torch_pins"
if [ "$(cat .venv/.neurflow-setup 2>/dev/null)" != "$setup_stamp" ]; then
  # shellcheck disable=SC2086
  python -m pip install -q --disable-pip-version-check $torch_pins
  python -m pip install -q --disable-pip-version-check -e '.[test]'
  echo "$setup_stamp" > .venv/.neurflow-setup
fi

ensure_java() {
  if ! command -v java >/dev/null || ! command -v mvn >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      apt-get update -qq && apt-get install -y -qq openjdk-17-jre-headless maven >/dev/null
    else
      echo "neurflow needs Java 17 and Maven for its local Neo4j:" \
        "apt-get install openjdk-17-jre-headless maven" >&2
      echo "(or run Neo4j with Docker: NEO4J_PASSWORD=... docker compose up -d neo4j)" >&2
      exit 1
    fi
  fi
}

ensure_chromium() {  # Debian's chromium, which the browser tests drive headless (marker `browser`)
  if ! command -v "${NEURFLOW_CHROMIUM:-chromium}" >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
      echo "the browser tests need Chromium: apt-get install chromium (or set NEURFLOW_CHROMIUM)" >&2
      exit 1
    fi
  fi
}

if [ "${NEURFLOW_SETUP_JAVA:-now}" != later ]; then
  ensure_java
fi

#!/usr/bin/env bash
# Sourced by the other scripts: a .venv (reusing packages already installed system-wide) with neurflow,
# its test tools and the offline EfficientNet-Lite0, plus a check for Java and Maven (the local Neo4j).
set -euo pipefail
if [ ! -x .venv/bin/python ]; then
  python3 -m venv --system-site-packages .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
python -m pip install -q --disable-pip-version-check torch==2.14.1 torchvision==0.29.1
python -m pip install -q --disable-pip-version-check -e '.[test]'
if ! command -v java >/dev/null || ! command -v mvn >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && apt-get install -y -qq openjdk-17-jre-headless maven >/dev/null
  else
    echo "neurflow needs Java 17 and Maven for its local Neo4j: apt-get install openjdk-17-jre-headless maven" >&2
    echo "(or run Neo4j with Docker: NEO4J_PASSWORD=... docker compose up -d neo4j)" >&2
    exit 1
  fi
fi

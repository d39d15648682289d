#!/usr/bin/env bash
# Build the wheel and install it, with its declared dependencies only, into a brand-new virtual
# environment (CPU torch first), then analyse a shipped example from a folder outside the checkout.
# Proves the runtime install is complete without training extras (no peft, datasets, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
.venv/bin/python -m pip wheel -q --no-deps --no-build-isolation -w "$tmp/dist" .
"$PY" -m venv "$tmp/venv"
"$tmp/venv/bin/python" -m pip install -q --upgrade pip
"$tmp/venv/bin/python" -m pip install -q "torch==2.13.0" || "$tmp/venv/bin/python" -m pip install -q torch
"$tmp/venv/bin/python" -m pip install -q "$tmp"/dist/alliance_nlp-*.whl
if "$tmp/venv/bin/python" -c "import peft" 2>/dev/null; then echo "check_wheel: peft was installed by the runtime" >&2; exit 1; fi
mkdir "$tmp/elsewhere"
cp data/examples/session_cbt.txt "$tmp/elsewhere/session.txt"
(cd "$tmp/elsewhere" && "$tmp/venv/bin/alliance-nlp" analyze session.txt -o out -q \
  && "$tmp/venv/bin/python" -c "import json; s = json.load(open('out/summary.json')); assert s['total']['estimate']; print('check_wheel: fresh install analysed the example, Total', s['total'])")

#!/usr/bin/env bash
# Create .venv and install alliance-nlp with its test extras. Idempotent: re-runs only when
# pyproject.toml changed. The CPU torch wheel goes in first, so that the plain `torch` requirement
# in pyproject (left open for GPU users) does not pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
VENV="${ALLIANCE_VENV:-.venv}"
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
stamp="$VENV/.alliance-nlp-installed"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setting up $VENV (first run takes a few minutes)..." >&2
  "$VENV/bin/python" -m pip install -q --upgrade pip
  if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
    "$VENV/bin/python" -m pip install -q "torch==2.13.0" \
      || { echo "torch 2.13.0 CPU wheel not found; installing the default torch build" >&2;
           "$VENV/bin/python" -m pip install -q torch; }
  fi
  "$VENV/bin/python" -m pip install -q -e ".[train,test,dev]"
  echo "$want" > "$stamp"
fi

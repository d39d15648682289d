#!/usr/bin/env bash
# Set up (if needed) and analyse the shipped example session into out/example/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/alliance-nlp analyze data/examples/session_cbt.txt -o out/example "$@"
.venv/bin/python - <<'PY'
import json
s = json.load(open("out/example/summary.json"))
print(json.dumps({k: s[k] for k in ("counts", "roles", "goal", "task", "bond", "total", "indices") if k in s}, indent=1))
PY

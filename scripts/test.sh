#!/usr/bin/env bash
# Set up (if needed) and run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/install_browser.sh  # Chromium for tests/test_browser.py; skips quietly where it cannot
exec .venv/bin/python -m pytest "$@"

#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what is missing, then runs pytest.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh tests/native -x`).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
# The compiled extension must be what the tests exercise: a missing build is an error, not a
# silent switch to the pure-Python fallback.
export GONKA_NATIVE="${GONKA_NATIVE:-native}"
exec "$ROOT/.venv/bin/python" -m pytest "$@"

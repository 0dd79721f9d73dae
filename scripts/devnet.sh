#!/usr/bin/env bash
# The main job, from a fresh machine: installs what is missing, then runs `gonka devnet`.
# Extra arguments go to `gonka devnet`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/bootstrap.sh"
exec "$ROOT/.venv/bin/gonka" devnet "$@"

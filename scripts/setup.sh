#!/usr/bin/env bash
# Idempotent setup of a banet-jax checkout on Debian/Ubuntu with Python 3.11+.
#
#   bash scripts/setup.sh
#
# 1. apt packages from APT_PACKAGES that are missing (only when running as root and
#    apt-get/dpkg exist; otherwise it prints what is missing and goes on).
# 2. A virtual environment in <checkout>/.venv (python3.11, else python3 if >= 3.11).
# 3. pip install -r requirements.txt and pip install -e . --no-deps, skipped when the stamp
#    file .venv/.banet_setup_stamp holds the sha256 of requirements.txt + pyproject.toml.
#
# Environment: PYTHON=/path/to/python3.x picks the interpreter; BANET_FORCE_SETUP=1 ignores
# the stamp.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

log() { echo "[setup] $*"; }

# ---------------------------------------------------------------------------------------
# 1. System packages.
# python3-venv: venv + ensurepip for Debian's python3.
# libegl1 libegl-mesa0 libgl1-mesa-dri: headless EGL rendering with Mesa (odah_tfds/render).
APT_PACKAGES=(python3-venv libegl1 libegl-mesa0 libgl1-mesa-dri)

missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  for pkg in "${APT_PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$pkg")
    fi
  done
else
  log "no dpkg-query: not a Debian-like system, skipping apt packages"
fi

if [ "${#missing[@]}" -eq 0 ]; then
  log "apt: nothing to install"
elif [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  log "apt: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y --no-install-recommends "${missing[@]}"
else
  log "apt: missing ${missing[*]} but not root; continuing (if a later step fails, run:"
  log "     sudo apt-get update && sudo apt-get install -y ${missing[*]})"
fi

# ---------------------------------------------------------------------------------------
# 2. Python and the virtual environment.
py_ok() {  # usage: py_ok /path/to/python -> true when it is Python >= 3.11
  "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' >/dev/null 2>&1
}

VENV="$ROOT/.venv"
VPY="$VENV/bin/python"

if [ -x "$VPY" ] && py_ok "$VPY" && "$VPY" -m pip --version >/dev/null 2>&1; then
  log "venv: reusing $VENV ($("$VPY" --version 2>&1))"
else
  PY="${PYTHON:-}"
  if [ -z "$PY" ]; then
    if command -v python3.11 >/dev/null 2>&1; then
      PY="$(command -v python3.11)"
    elif command -v python3 >/dev/null 2>&1 && py_ok "$(command -v python3)"; then
      PY="$(command -v python3)"
    fi
  fi
  if [ -z "$PY" ] || ! py_ok "$PY"; then
    echo "[setup] ERROR: need Python >= 3.11 (python3.11, or python3 at 3.11+; or set PYTHON=...)." >&2
    echo "[setup]        found: $(command -v python3 || echo 'no python3') $(python3 --version 2>&1 || true)" >&2
    exit 1
  fi
  if [ -e "$VENV" ]; then
    log "venv: $VENV is unusable; recreating it"
    rm -rf "$VENV"
  fi
  log "venv: creating $VENV with $PY ($("$PY" --version 2>&1))"
  if ! "$PY" -m venv "$VENV"; then
    echo "[setup] ERROR: '$PY -m venv' failed; on Debian/Ubuntu install python3-venv" \
         "(or python3.11-venv) and rerun." >&2
    rm -rf "$VENV"
    exit 1
  fi
fi

# ---------------------------------------------------------------------------------------
# 3. Python packages, skipped when nothing changed since the last successful run.
STAMP="$VENV/.banet_setup_stamp"
WANT="$(cat requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)"
HAVE="$(cat "$STAMP" 2>/dev/null || true)"

if [ "${BANET_FORCE_SETUP:-0}" != "1" ] && [ "$WANT" = "$HAVE" ]; then
  log "pip: requirements.txt and pyproject.toml unchanged (stamp $STAMP); skipping installs"
else
  log "pip: installing requirements.txt into $VENV"
  "$VPY" -m pip install --disable-pip-version-check -q -r requirements.txt
  log "pip: installing this checkout in editable mode (pip install -e . --no-deps)"
  "$VPY" -m pip install --disable-pip-version-check -q -e . --no-deps
  echo "$WANT" > "$STAMP"
  log "pip: done; wrote stamp $STAMP"
fi

log "ready: $VPY"

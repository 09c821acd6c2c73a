#!/usr/bin/env bash
# Sets up the checkout (scripts/setup.sh) and runs the project's main job.
# For now the main job is the skeleton demo: it poses the project OpenSim model in a few
# textbook postures, prints marker positions and writes outputs/skeleton_demo/postures.png.
# Extra arguments go to the demo, e.g. bash scripts/main.sh --out_dir=/tmp/demo
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
echo "[main] .venv/bin/python -m launch.skeleton_demo $*"
exec "$ROOT/.venv/bin/python" -m launch.skeleton_demo "$@"

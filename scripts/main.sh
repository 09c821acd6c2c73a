#!/usr/bin/env bash
# Sets up the checkout (scripts/setup.sh) and runs the project's main job on the embedded
# defaults (anny bodies, procedural motions, the project OpenSim model; nothing licensed):
#   1. the skeleton demo: the project model in a few textbook postures
#      (outputs/skeleton_demo/postures.png);
#   2. `tfds build odah_tfds/odah --config=tiny` (array_record, so tfds.data_source reads it)
#      into $TFDS_DATA_DIR (default ~/tensorflow_datasets); skipped by TFDS when already built;
#   3. a contact sheet of the built data: both views with the joint centres drawn on
#      (outputs/odah_tiny_contact_sheet.png).
# Environment: ODAH_CONFIG (default tiny), ODAH_WORKERS (default: one per core).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
PY="$ROOT/.venv/bin/python"
CONFIG="${ODAH_CONFIG:-tiny}"
DATA_DIR="${TFDS_DATA_DIR:-$HOME/tensorflow_datasets}"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"

echo "[main] 1/3 skeleton demo: $PY -m launch.skeleton_demo"
"$PY" -m launch.skeleton_demo --out_dir=outputs/skeleton_demo

echo "[main] 2/3 dataset: tfds build odah_tfds/odah --config=$CONFIG --data_dir=$DATA_DIR --file_format=array_record"
"$ROOT/.venv/bin/tfds" build odah_tfds/odah --config="$CONFIG" --data_dir="$DATA_DIR" \
  --file_format=array_record

echo "[main] 3/3 contact sheet: outputs/odah_${CONFIG}_contact_sheet.png"
"$PY" -m odah_tfds.odah.contact_sheet --config="$CONFIG" --data_dir="$DATA_DIR" \
  --split=train --out="outputs/odah_${CONFIG}_contact_sheet.png"
echo "[main] done"

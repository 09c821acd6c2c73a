#!/usr/bin/env bash
# Sets up the checkout (scripts/setup.sh) and runs the project's main job on the embedded
# defaults (anny bodies, procedural motions, the project OpenSim model; nothing licensed):
#   1. the skeleton demo: the project model in a few textbook postures
#      (outputs/skeleton_demo/postures.png);
#   2. `tfds build odah --config=small` (array_record, so tfds.data_source reads it)
#      into $TFDS_DATA_DIR (default ~/tensorflow_datasets); skipped by TFDS when already built;
#   3. a contact sheet of the built data: both views with the joint centres drawn on
#      (outputs/odah_<config>_contact_sheet.png);
#   4. training, stage 1 (launch/flags/tiny_cpu.flags) then stage 2
#      (launch/flags/tiny_cpu_stage2.flags), into runs/main_stage1 and runs/main_stage2;
#      a re-run resumes (or skips) what is already there;
#   5. evaluation of both stages on the held-out test subjects, next to the mean-pose
#      baseline: prints the metrics tables; writes outputs/main_eval_stage1/ and
#      outputs/main_eval_stage2/ (metrics.json/.md, plots, OpenSim .mot/.trc/.osim exports).
# Measured on the 2-core machine (2026-11-24, odah/small 1.1.0): build 12.6 min, stage 1
# 7.3 min, stage 2 4.7 min, evaluations 40 s each (26 min in all); test-subject coordinate
# MAE 6.11 deg (stage 1) / 5.92 deg (stage 2) against 8.36 deg for the mean pose.
# Environment: ODAH_CONFIG (default small), ODAH_WORKERS (default: one per core), RUNS_DIR
# (default runs), TFDS_DATA_DIR.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
PY="$ROOT/.venv/bin/python"
CONFIG="${ODAH_CONFIG:-small}"
DATA_DIR="${TFDS_DATA_DIR:-$HOME/tensorflow_datasets}"
RUNS="${RUNS_DIR:-runs}"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
SECONDS=0

echo "[main] 1/5 skeleton demo: $PY -m launch.skeleton_demo"
"$PY" -m launch.skeleton_demo --out_dir=outputs/skeleton_demo

echo "[main] 2/5 dataset: tfds build odah --config=$CONFIG --data_dir=$DATA_DIR --file_format=array_record"
"$ROOT/.venv/bin/tfds" build odah --config="$CONFIG" --data_dir="$DATA_DIR" \
  --file_format=array_record

echo "[main] 3/5 contact sheet: outputs/odah_${CONFIG}_contact_sheet.png"
"$PY" -m odah_tfds.odah.contact_sheet --config="$CONFIG" --data_dir="$DATA_DIR" \
  --split=train --out="outputs/odah_${CONFIG}_contact_sheet.png"

echo "[main] 4/5 training: stage 1 then stage 2 on odah/$CONFIG ($SECONDS s so far)"
"$PY" -m launch.train --flagfile=launch/flags/tiny_cpu.flags --dataset="odah/$CONFIG" \
  --data_dir="$DATA_DIR" --workdir="$RUNS/main_stage1"
"$PY" -m launch.train --flagfile=launch/flags/tiny_cpu_stage2.flags --dataset="odah/$CONFIG" \
  --data_dir="$DATA_DIR" --init_from="$RUNS/main_stage1" --workdir="$RUNS/main_stage2"

for STAGE in 1 2; do
  echo "[main] 5/5 stage $STAGE on the test subjects, next to the mean-pose baseline"
  # The outputs are derived: clear them so no clip of an earlier run or dataset lingers.
  rm -rf "outputs/main_eval_stage$STAGE"
  "$PY" -m launch.eval --checkpoint="$RUNS/main_stage$STAGE" --data_dir="$DATA_DIR" \
    --split=test --out_dir="outputs/main_eval_stage$STAGE"
done
echo "[main] done in $SECONDS s"

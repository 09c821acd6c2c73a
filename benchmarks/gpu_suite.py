r"""The GPU figures of the paper-size network in one run and one table (issue 17).

COMMAND:
  python benchmarks/gpu_suite.py                    # one GPU; about 8 minutes at most
  python benchmarks/gpu_suite.py --smoke            # tiny configs: checks the script on a CPU

HARDWARE: one GPU (the first JAX device; the others are hidden from every child, so the
steps are single-device). TIME: each row's child process is started only while
--deadline_s (default 450 s) has not passed, so the table is printed within about 8 minutes
whatever the GPU; rows that did not start are listed as not run. RESULT: not measured yet
(no GPU was lent when this was written); the CPU smoke run is tested in
tests/test_benchmark_scripts.py. `--rows=train_stage1` and the like rerun a part.

Rows, each from its own child process (all rows of the first dtype, with row 4 after them,
then the other dtypes) (its own compilation and peak memory; GPU: the
device's peak bytes in use, CPU: the child's maximum RSS):
  1. stage-1 training step (`benchmarks/train_throughput.py`: the real jitted step, Adam
     included, on device-resident random batches) at the official batch, 8 two-view
     frames (`launch/flags/paper_stage1.flags`), float32 then bfloat16;
  2. stage-2 training step at the official batch, 2 chunks of 64 frames
     (`launch/flags/paper_stage2.flags`: encoder, heads and `to_one_scales` frozen),
     float32 then bfloat16;
  3. inference: a 600-frame two-view clip through `Predictor.predict_raw` with the stage-2
     model (`benchmarks/stream_predict.py`: host inputs, frame model in batches of
     --frame_batch, temporal module per window), float32 then bfloat16;
  4. the skeleton layer's forward kinematics on the project model (`benchmarks/
     skeleton_fk.py`), poses/s at large batches, against OpenSim on the host.
Every child's own table is kept in --out_dir (default: a temporary folder) as <row>.log.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags

ROOT = pathlib.Path(__file__).resolve().parents[1]

_SMOKE = flags.DEFINE_bool('smoke', False, 'Tiny configurations (seconds on a CPU): checks the '
                           'script, measures nothing worth quoting.')
_DTYPES = flags.DEFINE_list('dtypes', ['float32', 'bfloat16'], 'Compute dtypes of rows 1-3.')
_STEPS = flags.DEFINE_integer('train_steps', 20, 'Timed training steps per row.')
_FRAMES = flags.DEFINE_integer('stream_frames', 600, 'Frames of the inference clip.')
_FRAME_BATCH = flags.DEFINE_integer('frame_batch', 32, 'Two-view frames per frame-model call '
                                    'in the inference rows.')
_FK_BATCHES = flags.DEFINE_list('fk_batches', ['65536', '1048576'], 'Skeleton FK batch sizes.')
_DEADLINE = flags.DEFINE_float('deadline_s', 450.0, 'No row starts after this many seconds.')
_OUT_DIR = flags.DEFINE_string('out_dir', None, "Where the children's logs and JSON go.")
_ROWS = flags.DEFINE_list('rows', ['train', 'stream', 'skeleton_fk'], 'Which rows run (by '
                          'prefix of train_stage{1,2}_<dtype>, stream_<dtype>, skeleton_fk).')


def _children(out_dir: pathlib.Path) -> list[tuple[str, list[str], pathlib.Path]]:
  """(row name, command, JSON path) of every child, in order."""
  py = [sys.executable]
  if _SMOKE.value:
    stage1 = ['--flagfile=launch/flags/smoke.flags']
    stage2 = ['--flagfile=launch/flags/smoke.flags', '--stage=2', '--freeze=auto']
    stream = ['--preset=tiny', f'--num_frames={min(_FRAMES.value, 24)}', '--frame_batches=4']
    fk = ['--batches=64', '--opensim_poses=20', '--repeats=1']
  else:
    stage1 = ['--flagfile=launch/flags/paper_stage1.flags']
    stage2 = ['--flagfile=launch/flags/paper_stage2.flags']
    stream = ['--preset=paper', f'--num_frames={_FRAMES.value}',
              f'--frame_batches={_FRAME_BATCH.value}']
    fk = [f'--batches={",".join(_FK_BATCHES.value)}', '--opensim_poses=500', '--repeats=3']
  fk_child = ('skeleton_fk', py + ['benchmarks/skeleton_fk.py', *fk,
                                   f'--json={out_dir / "skeleton_fk"}.json'],
              out_dir / 'skeleton_fk.json')
  out = []
  for i, dtype in enumerate(_DTYPES.value):  # every row of the first dtype before the others
    for stage, args in ((1, stage1), (2, stage2)):
      name = f'train_stage{stage}_{dtype}'
      out.append((name, py + ['benchmarks/train_throughput.py', *args, f'--dtypes={dtype}',
                              f'--bench_steps={_STEPS.value}', f'--json={out_dir / name}.json'],
                  out_dir / f'{name}.json'))
    name = f'stream_{dtype}'
    out.append((name, py + ['benchmarks/stream_predict.py', *stream, '--stages=2',
                            f'--dtypes={dtype}', f'--json={out_dir / name}.json'],
                 out_dir / f'{name}.json'))
    if i == 0:
      out.append(fk_child)
  return [c for c in out if any(c[0].startswith(r) for r in _ROWS.value)]


def _table_rows(name: str, results: list[dict]) -> list[list[str]]:
  """Cells: row, configuration, dtype, throughput (with its unit), peak GiB, compile s."""
  rows = []
  for r in results:
    if name.startswith('train'):
      what = 'frames' if r['stage'] == 1 else 'chunks'
      rows.append([f"stage-{r['stage']} training step", f"{r['preset']}, batch "
                   f"{r['batch_size']} {what}", r['dtype'],
                   f"{r['steps_per_sec']:.2f} steps/s ({r['frames_per_sec']:.1f} frames/s)",
                   f"{r['memory_gib']:.2f}", f"{r['compile_s']:.0f}"])
    elif name.startswith('stream'):
      rows.append([f"inference, stage {r['stage']}", f"{r['model']}, {r['frames']}-frame clip, "
                   f"frame batch {r['frame_batch']}", r['dtype'],
                   f"{r['frames_per_s']:.1f} frames/s", f"{r['peak_gib']:.2f}",
                   f"{r['warmup_s']:.0f}"])
    else:
      for batch, rate in r['jax_poses_per_s'].items():
        rows.append([f'skeleton FK ({r["platform"]})', f"{r['model']}, batch {batch}",
                     r['dtype'], f"{rate:,.0f} poses/s "
                     f"({rate / r['opensim_poses_per_s']:,.0f}x OpenSim)", '-', '-'])
  return rows


def main(argv):
  del argv
  start = time.perf_counter()
  out_dir = pathlib.Path(_OUT_DIR.value or tempfile.mkdtemp(prefix='gpu_suite_'))
  out_dir.mkdir(parents=True, exist_ok=True)
  env = dict(os.environ, PYTHONPATH=os.pathsep.join(
      p for p in (str(ROOT), os.environ.get('PYTHONPATH')) if p))
  env.setdefault('CUDA_VISIBLE_DEVICES', '0')  # single-device steps (the official ones are)
  table, not_run, failed = [], [], []
  for name, command, json_path in _children(out_dir):
    elapsed = time.perf_counter() - start
    if elapsed > _DEADLINE.value:
      not_run.append(name)
      continue
    print(f'[gpu_suite {elapsed:5.0f} s] {name}: {" ".join(command[1:])}', file=sys.stderr,
          flush=True)
    with open(out_dir / f'{name}.log', 'w', encoding='utf-8') as log:
      child = subprocess.run(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                             check=False)
    if child.returncode or not json_path.exists():
      failed.append(f'{name} (exit {child.returncode}; {out_dir / name}.log)')
      continue
    table += _table_rows(name, json.loads(json_path.read_text()))
  import jax  # pylint: disable=g-import-not-at-top  # only now: children had the device
  from benchmarks import _common  # pylint: disable=g-import-not-at-top
  print(_common.platform_info())
  print(f'device: {jax.devices()[0].device_kind}; {time.perf_counter() - start:.0f} s in all'
        + ('; SMOKE configurations (tiny), not the paper network' if _SMOKE.value else ''))
  print('| row | configuration | dtype | throughput | peak memory GiB | compile s |')
  print('|---|---|---|---|---|---|')
  for cells in table:
    print('| ' + ' | '.join(cells) + ' |')
  if not_run:
    print(f'not run (past --deadline_s={_DEADLINE.value:.0f}): {", ".join(not_run)}')
  if failed:
    print(f'failed: {"; ".join(failed)}')
    sys.exit(1)


if __name__ == '__main__':
  sys.path.insert(0, str(ROOT))
  app.run(main)

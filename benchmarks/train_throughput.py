r"""Training throughput of a flagfile's configuration on the current backend.

COMMAND:
  python benchmarks/train_throughput.py --flagfile=launch/flags/tiny_cpu.flags
  python benchmarks/train_throughput.py --flagfile=launch/flags/tiny_cpu_stage2.flags
  python benchmarks/train_throughput.py --flagfile=launch/flags/paper_stage1.flags \
      --dtypes=float32,bfloat16                                   # on a GPU

Times the real training step (`banet_jax.train`: optimiser, frozen parameters and the
flagfile's parallelism over all devices) on random device-resident batches of the right
shapes, so no dataset is needed and the input pipeline is excluded; with --pipeline it
also times the host input pipeline alone on synthetic clips (batches/s it can feed).
Prints a Markdown table, one row per dtype: compile seconds (with the first step), seconds
per step, steps/s, examples/s (frames in stage 1, chunks in stage 2), two-view frames/s, and
peak memory (GPU: the device's peak bytes in use; CPU: the process's maximum RSS, which
includes everything before).
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import platform
import sys
import time

from absl import app
from absl import flags
import jax
import numpy as np

from banet_jax import data
from banet_jax import run_config
from banet_jax import train

if not __package__:  # run as a script: only benchmarks/ is on sys.path, not the repository
  sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from benchmarks import _common  # pylint: disable=g-import-not-at-top,wrong-import-position
from launch import train as train_launcher  # pylint: disable=g-import-not-at-top,wrong-import-position

_DTYPES = flags.DEFINE_list('dtypes', ['float32'], 'Compute dtypes: float32, bfloat16.')
_STEPS = flags.DEFINE_integer('bench_steps', 10, 'Timed training steps per row.')
_PIPELINE = flags.DEFINE_bool('pipeline', False, 'Also time the host input pipeline on '
                              'synthetic clips (--synthetic_* flags, --data_threads).')
_PIPELINE_BATCHES = flags.DEFINE_integer('pipeline_batches', 10, 'Batches for --pipeline.')
_JSON = flags.DEFINE_string('json', None, 'Also write the rows (with the preset, stage and '
                            'batch) to this JSON file (benchmarks/gpu_suite.py reads it).')


def random_batch(task: train.Task, batch: int) -> dict:
  """A batch of the shapes `banet_jax.data` produces, random values (numpy)."""
  rng = np.random.default_rng(0)
  c, layout = task.net.config, task.net.layout
  lead = (batch,) if task.config.stage == 1 else (batch, c.chunk_length)
  skel = layout.skeleton
  return {
      'images': rng.normal(size=lead + (c.num_views, c.image_size, c.image_size, 3)),
      'crop_pixels': rng.uniform(0, c.image_size, lead + (c.num_views, c.num_points, 2)),
      'query_points': rng.normal(scale=0.3, size=lead + (c.num_points, 3)),
      'coordinates': np.broadcast_to(skel.default_coordinates, lead + (skel.num_coordinates,)),
      'scales': np.ones(lead + (skel.num_bodies, 3)),
      'points': rng.normal(scale=0.5, size=lead + (layout.num_points, 3)),
  }


def measure(config: run_config.TrainConfig) -> dict:
  task = train.Task(config)
  parallel = train.Parallel(config.parallelism, config.batch_size)
  state = parallel.init(task.init_state, jax.random.key(0), None)
  batch = parallel.place_batch({k: np.asarray(v, np.float32)
                                for k, v in random_batch(task, config.batch_size).items()})
  step = parallel.compile_train(task)
  start = time.perf_counter()
  state, metrics = step(state, batch)  # compiles
  jax.block_until_ready(metrics)
  compile_s = time.perf_counter() - start
  start = time.perf_counter()
  for _ in range(_STEPS.value):
    state, metrics = step(state, batch)
  jax.block_until_ready((state, metrics))
  rate = _STEPS.value / (time.perf_counter() - start)
  return dict(compile_s=compile_s, steps_per_sec=rate,
              examples_per_sec=rate * config.batch_size,
              frames_per_sec=rate * config.batch_size * task.frames_per_example,
              memory_gib=_common.peak_memory_gib())


def pipeline_rate(config: run_config.TrainConfig) -> float:
  """Batches/s of the host input pipeline on synthetic clips (clip generation excluded)."""
  task = train.Task(config)
  source = data.open_source('synthetic', 'train', layout=task.net.layout,
                            synthetic_clips=config.synthetic_clips,
                            synthetic_frames=config.synthetic_frames,
                            synthetic_crop_size=config.synthetic_crop_size)
  for i in range(len(source)):  # generate the clips up front
    source[i]  # pylint: disable=pointless-statement
  pipeline = dataclasses.replace(train.pipeline_config(config, task), clip_cache=len(source))
  ds, _ = data.train_batches(source, task.net.layout, pipeline)
  iterator = data.make_iterator(ds, config.data_threads, config.prefetch)
  next(iterator)
  start = time.perf_counter()
  for _ in range(_PIPELINE_BATCHES.value):
    next(iterator)
  return _PIPELINE_BATCHES.value / (time.perf_counter() - start)


def main(argv):
  del argv
  train_launcher.configure_jax(flags.FLAGS)
  base = train_launcher.config_from_flags()
  c = base.model_config()
  print(f'jax {jax.__version__}, backend {jax.default_backend()}, {jax.device_count()} '
        f'devices ({jax.devices()[0].device_kind}), {platform.processor() or platform.machine()}')
  print(f'preset {base.preset} (image {c.image_size}, {c.num_points} points, chunk '
        f'{c.chunk_length}), stage {base.stage}, global batch {base.batch_size}, '
        f'parallelism {base.parallelism}, {_STEPS.value} timed steps')
  columns = ['dtype', 'compile s', 's/step', 'steps/s', 'examples/s', 'frames/s',
             'peak memory GiB']
  if _PIPELINE.value:
    columns.insert(6, 'pipeline batches/s')
  print('| ' + ' | '.join(columns) + ' |')
  print('|' + '---|' * len(columns))
  rows = []
  for dtype in _DTYPES.value:
    config = base.replace(model_overrides=dict(base.model_overrides, compute_dtype=dtype))
    r = measure(config)
    rows.append(dict(r, dtype=dtype, preset=base.preset, stage=base.stage,
                     batch_size=base.batch_size, steps=_STEPS.value))
    row = [dtype, f'{r["compile_s"]:.1f}', f'{1 / r["steps_per_sec"]:.3g}',
           f'{r["steps_per_sec"]:.3g}',
           f'{r["examples_per_sec"]:.1f}', f'{r["frames_per_sec"]:.1f}',
           f'{r["memory_gib"]:.2f}']
    if _PIPELINE.value:
      row.insert(6, f'{pipeline_rate(config):.2f}')
    print('| ' + ' | '.join(row) + ' |', flush=True)
  if _JSON.value:
    pathlib.Path(_JSON.value).write_text(json.dumps(rows, indent=1))


if __name__ == '__main__':
  train_launcher.define_flags()  # the training flags (--flagfile=launch/flags/*.flags)
  app.run(main)

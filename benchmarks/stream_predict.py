r"""Frames per second of inference on a long two-view clip (`banet_jax.inference.Predictor`).

COMMAND:
  python benchmarks/stream_predict.py                                # CPU: paper, 600 frames
  python benchmarks/stream_predict.py --num_frames=64 --frame_batches=1,2,4,8 --stages=1
  python benchmarks/stream_predict.py --frame_batches=16,32 --dtypes=float32,bfloat16  # GPU
  python benchmarks/stream_predict.py --checkpoint=default --num_frames=600  # a real model

What a user waits for: a `--num_frames` two-view clip (default 600, 10 s at 60 fps) through
`Predictor.predict_raw`, as `launch.predict` runs it: per frame the crop resize and the
visual-hull query points on the host, the frame model in batches of `frame_batch` frames
(the last one padded), and in stage 2 the temporal module on each 64-frame window
(`inference.chunk_windows`). Compile time is excluded (`Predictor.warm_up` runs first).

Every row runs in its own child process, so its peak memory is its own: GPU: the device's
peak bytes in use; CPU: the child's maximum RSS (which includes the clip and JAX itself;
the clip's inputs at 256 px are `clip MiB`). Bounded memory means peak memory that depends
on `frame_batch` and not on `--num_frames`: compare two lengths.

The clip: a synthetic ODAH clip (`banet_jax.synthetic`, 8 frames at the model's crop size,
real cameras and masks) repeated to `--num_frames`; random weights of `--preset` unless
`--checkpoint` is given. Timing does not depend on the values.
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import time

from absl import app
from absl import flags
import jax
import numpy as np

from banet_jax import data
from banet_jax.inference import Predictor
from banet_jax.model.banet import BANet, PRESETS, get_config

if not __package__:  # run as a script: only benchmarks/ is on sys.path, not the repository
  sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from benchmarks import _common  # pylint: disable=g-import-not-at-top,wrong-import-position

_PRESET = flags.DEFINE_enum('preset', 'paper', sorted(PRESETS), 'Network size (random weights).')
_CHECKPOINT = flags.DEFINE_string('checkpoint', None, "A run, checkpoint or release ('default': "
                                  'the shipped model) instead of --preset; its own stage.')
_STAGES = flags.DEFINE_list('stages', ['1', '2'], "1: frame model only; 2: and the temporal "
                            'module (ignored with --checkpoint).')
_FRAME_BATCHES = flags.DEFINE_list('frame_batches', ['2'], 'Two-view frames per frame-model call.')
_DTYPES = flags.DEFINE_list('dtypes', ['float32'], 'Compute dtypes: float32, bfloat16.')
_NUM_FRAMES = flags.DEFINE_integer('num_frames', 600, 'Frames of the clip.')
_JSON = flags.DEFINE_string('json', None, 'Also write the rows to this JSON file.')
_CHILD = flags.DEFINE_string('child', None, 'Internal: one row, as stage,frame_batch,dtype.')


def long_clip(net: BANet, num_frames: int, source_frames: int = 8) -> dict:
  """A synthetic clip of `source_frames` frames at the model's crop size, repeated in time
  to `num_frames` (crops, masks and crop_meta are (V, T, ...); cameras are per clip)."""
  size = net.config.image_size
  clip = data.open_source('synthetic', 'test', layout=net.layout, synthetic_clips=1,
                          synthetic_frames=source_frames, synthetic_crop_size=size)[0]
  index = np.arange(num_frames) % source_frames
  return {k: (np.asarray(v)[:, index] if k in ('crops', 'masks', 'crop_meta') else v)
          for k, v in clip.items()}


def measure(stage: int, frame_batch: int, dtype: str) -> dict:
  """One row, in this process."""
  if _CHECKPOINT.value:
    predictor = Predictor.restore(_CHECKPOINT.value, frame_batch=frame_batch)
    net, stage, name = predictor.net, predictor.stage, _CHECKPOINT.value
  else:
    net = BANet.create(get_config(_PRESET.value, compute_dtype=dtype))
    init = jax.jit(net.init_frame if stage == 1 else net.init_sequence)
    params = init(jax.random.key(0, impl='unsafe_rbg'))['params']
    predictor, name = Predictor(net, params, stage, frame_batch=frame_batch), _PRESET.value
  start = time.perf_counter()
  predictor.warm_up()  # compiles the frame batch (and the chunk)
  compile_s = time.perf_counter() - start
  clip = long_clip(net, _NUM_FRAMES.value)
  clip_mib = sum(np.asarray(clip[k]).nbytes for k in ('crops', 'masks')) / 2**20
  start = time.perf_counter()
  raw = predictor.predict_raw(clip)
  seconds = time.perf_counter() - start
  assert raw.shape[0] == _NUM_FRAMES.value and np.all(np.isfinite(raw))
  return dict(model=name, stage=stage, frame_batch=frame_batch,
              dtype=net.config.compute_dtype, frames=_NUM_FRAMES.value,
              warmup_s=compile_s, seconds=seconds, frames_per_s=_NUM_FRAMES.value / seconds,
              clip_mib=clip_mib, peak_gib=_common.peak_memory_gib())


def rows(configs):
  """Yields each (stage, frame_batch, dtype) row, run in a child process (its own peak
  memory)."""
  for stage, batch, dtype in configs:
    args = [a for a in sys.argv[1:] if not a.startswith(('--json', '--child'))]
    child = subprocess.run([sys.executable, str(pathlib.Path(__file__).resolve()), *args,
                            f'--child={stage},{batch},{dtype}'],
                           capture_output=True, text=True, check=False)
    lines = [l for l in child.stdout.splitlines() if l.startswith('{')]
    if child.returncode or not lines:
      raise RuntimeError(f'row stage {stage}, frame_batch {batch}, {dtype} failed:\n'
                         f'{child.stdout[-2000:]}{child.stderr[-4000:]}')
    yield json.loads(lines[-1])


def main(argv):
  del argv
  if _CHILD.value:
    stage, batch, dtype = _CHILD.value.split(',')
    print(json.dumps(measure(int(stage), int(batch), dtype)), flush=True)
    return
  stages = [0] if _CHECKPOINT.value else [int(s) for s in _STAGES.value]
  configs = [(s, int(b), d) for s in stages for d in _DTYPES.value for b in _FRAME_BATCHES.value]
  print(_common.platform_info(with_load=True))
  print(f'{_NUM_FRAMES.value}-frame two-view clip through Predictor.predict_raw '
        '(host inputs + network; compile excluded)')
  print('| model | stage | frame batch | dtype | frames | warm-up s | seconds | frames/s '
        '| clip MiB | peak memory GiB |')
  print('|---|---|---|---|---|---|---|---|---|---|')
  results = []
  for r in rows(configs):
    results.append(r)
    print(f"| {r['model']} | {r['stage']} | {r['frame_batch']} | {r['dtype']} | {r['frames']} "
          f"| {r['warmup_s']:.1f} | {r['seconds']:.1f} | {r['frames_per_s']:.3f} "
          f"| {r['clip_mib']:.0f} | {r['peak_gib']:.2f} |", flush=True)
  if _JSON.value:
    pathlib.Path(_JSON.value).write_text(json.dumps(results, indent=1))


if __name__ == '__main__':
  app.run(main)

r"""BANet forward and forward+backward time per two-view frame and per chunk.

COMMAND:
  python benchmarks/banet_step.py                              # CPU: tiny (frame, chunk), paper (frame)
  python benchmarks/banet_step.py --presets=paper --units=frame,chunk --frame_batch=8 \
      --chunk_batch=2 --dtypes=float32,bfloat16                 # GPU: the official batch sizes

Prints a Markdown table, one row per (preset, unit, batch, dtype):
  unit `frame`: the stage-1 model (`BANetFrame`) on a batch of two-view frames;
  unit `chunk`: the stage-2 model (`BANetSequence`) on a batch of `chunk_length`-frame chunks.
Columns: compile seconds of the forward and of the training gradient (value_and_grad of the
official loss, through the skeleton layer), then milliseconds per call and per frame for the
forward and for forward+backward (median of --repeats calls, results blocked on), and peak
memory (GPU: the device's peak bytes in use; CPU: the process's maximum RSS, which includes
everything allocated before). `--remat`: the encoder's residual blocks rematerialised in the
backward pass (less memory for one more forward of them).
Inputs are random; timing does not depend on values. Parameters are float32; `bfloat16`
computes activations in bfloat16 (for GPU/TPU).
"""

from __future__ import annotations

import pathlib
import statistics
import sys
import time

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import numpy as np

from banet_jax import losses
from banet_jax.model.banet import BANet, PRESETS, get_config

if not __package__:  # run as a script: only benchmarks/ is on sys.path, not the repository
  sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from benchmarks import _common  # pylint: disable=g-import-not-at-top,wrong-import-position

_PRESETS = flags.DEFINE_list('presets', ['tiny', 'paper'], f'From {sorted(PRESETS)}.')
_UNITS = flags.DEFINE_list('units', None, "'frame' and/or 'chunk' (default: tiny both, "
                           'paper frame only on CPU, both on an accelerator).')
_FRAME_BATCH = flags.DEFINE_integer('frame_batch', 2, 'Two-view frames per call.')
_CHUNK_BATCH = flags.DEFINE_integer('chunk_batch', 1, 'Chunks per call.')
_DTYPES = flags.DEFINE_list('dtypes', ['float32'], 'Compute dtypes: float32, bfloat16.')
_REPEATS = flags.DEFINE_integer('repeats', 3, 'Timed calls per row (median shown).')
_REMAT = flags.DEFINE_bool('remat', False, "Rematerialise the encoder's residual blocks in the "
                           'backward pass (BANetConfig.remat). Peak memory is per process: '
                           'compare two runs, with and without.')


def _inputs(net: BANet, batch: int, frames: int | None):
  rng = np.random.default_rng(0)
  images, pixels, points = net.example_inputs(batch, frames)
  c, skel = net.config, net.layout.skeleton
  lead = images.shape[:-4]
  targets = (jnp.asarray(np.broadcast_to(skel.default_coordinates, lead + (skel.num_coordinates,)),
                         jnp.float32),
             jnp.ones(lead + (skel.num_bodies, 3), jnp.float32))
  return (jnp.asarray(rng.normal(size=images.shape), jnp.float32),
          jnp.asarray(rng.uniform(0, c.image_size, size=pixels.shape), jnp.float32),
          jnp.asarray(rng.normal(scale=0.3, size=points.shape), jnp.float32)), targets


def _time(fn, *args) -> float:
  times = []
  for _ in range(_REPEATS.value):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def measure(preset: str, unit: str, dtype: str) -> dict:
  net = BANet.create(get_config(preset, compute_dtype=dtype, remat=_REMAT.value))
  chunk = unit == 'chunk'
  batch = _CHUNK_BATCH.value if chunk else _FRAME_BATCH.value
  frames = net.config.chunk_length if chunk else None
  inputs, targets = _inputs(net, batch, frames)
  module = net.sequence if chunk else net.frame
  init = jax.jit(net.init_sequence if chunk else net.init_frame)
  params = init(jax.random.key(0, impl='unsafe_rbg'))['params']

  def forward(params, inputs):
    out = module.apply({'params': params}, *inputs)
    return out[1] if chunk else out

  def loss(params, inputs):
    pred = net.predict(forward(params, inputs))
    return losses.banet_losses(net.layout, pred['coordinates'], pred['scales'], *targets)['total']

  fwd = jax.jit(forward)
  grad = jax.jit(jax.value_and_grad(loss))
  start = time.perf_counter()
  fwd = fwd.lower(params, inputs).compile()
  compile_fwd = time.perf_counter() - start
  start = time.perf_counter()
  grad = grad.lower(params, inputs).compile()
  compile_grad = time.perf_counter() - start
  jax.block_until_ready(fwd(params, inputs))
  jax.block_until_ready(grad(params, inputs))
  t_fwd, t_grad = _time(fwd, params, inputs), _time(grad, params, inputs)
  n_frames = batch * (frames or 1)
  return dict(preset=preset, unit=unit, batch=batch, frames=n_frames, dtype=dtype,
              compile_fwd=compile_fwd, compile_grad=compile_grad,
              fwd_ms=t_fwd * 1e3, fwd_ms_frame=t_fwd * 1e3 / n_frames,
              grad_ms=t_grad * 1e3, grad_ms_frame=t_grad * 1e3 / n_frames,
              memory_gb=_common.peak_memory_gib())


def main(argv):
  del argv
  accelerator = jax.default_backend() != 'cpu'
  print(_common.platform_info(', '.join(_DTYPES.value)) + f'; remat {_REMAT.value}')
  print('| preset | unit | batch | frames | dtype | compile fwd s | compile grad s | fwd ms '
        '| fwd ms/frame | fwd+bwd ms | fwd+bwd ms/frame | peak memory GiB |')
  print('|---|---|---|---|---|---|---|---|---|---|---|---|')
  for preset in _PRESETS.value:
    units = _UNITS.value or (['frame', 'chunk'] if preset == 'tiny' or accelerator else ['frame'])
    for unit in units:
      for dtype in _DTYPES.value:
        r = measure(preset, unit, dtype)
        print(f"| {r['preset']} | {r['unit']} | {r['batch']} | {r['frames']} | {r['dtype']} "
              f"| {r['compile_fwd']:.1f} | {r['compile_grad']:.1f} | {r['fwd_ms']:.1f} "
              f"| {r['fwd_ms_frame']:.1f} | {r['grad_ms']:.1f} | {r['grad_ms_frame']:.1f} "
              f"| {r['memory_gb']:.2f} |", flush=True)


if __name__ == '__main__':
  app.run(main)

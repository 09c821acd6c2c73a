r"""Speed of the temporal Restormer (BANet stage 2) on its own: forward and forward+backward.

COMMAND:
  python benchmarks/restormer_speed.py                          # current module, paper preset
  git show a400200^:banet_jax/model/restormer.py > /tmp/restormer_orig.py   # before the rewrite
  python benchmarks/restormer_speed.py --repeats=3 \
      --variants=old=/tmp/restormer_orig.py,new=current   # old vs new, interleaved

The module is built exactly as `BANetSequence` builds it (`TemporalRestormer` with the
preset's temporal_dim / temporal_blocks / temporal_heads / ffn_expansion_factor, bias=True,
compute dtype from the preset, float32 parameters) and run on a random (batch, chunk_length,
out_dim) input: (2, 64, 102) by default, the official stage-2 batch of two 64-frame chunks of
102-vectors.

Columns: median seconds over --repeats calls of
  fwd      jax.jit(apply)(params, x), compile excluded, results blocked on;
  fwd+bwd  jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))(params, x) with
           loss = mean((y - target)^2), i.e. gradients w.r.t. the parameters and the input;
then each row's ratio to the first row, and to the official PyTorch figures (--official_fwd,
--official_fwdbwd: 1.38 s and 2.95 s, measured earlier on the 2-core development CPU).
Variants are timed interleaved (call 1 of every variant, then call 2, ..., the order rotated
every repeat), so load changes on a shared machine hit them alike. A variant is `current` (banet_jax.model.restormer) or
NAME=PATH, a file defining a `TemporalRestormer` with the same constructor and parameter tree
(e.g. a copy of an older restormer.py). All variants get the same parameters and inputs.

The official side is not run here (this project does not vendor or transcribe the
official code): its figures are the issue's, measured with the official repository's
module on the same machine type.
"""

from __future__ import annotations

import importlib.util
import math
import os
import pathlib
import statistics
import sys
import time

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import numpy as np

if not __package__:  # run as a script: only benchmarks/ is on sys.path, not the repository
  sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from banet_jax.model.banet import PRESETS, get_config  # pylint: disable=g-import-not-at-top,wrong-import-position
from benchmarks import _common  # pylint: disable=g-import-not-at-top,wrong-import-position

_PRESET = flags.DEFINE_string('preset', 'paper', f'From {sorted(PRESETS)}.')
_BATCH = flags.DEFINE_integer('batch', 2, 'Chunks per call.')
_FEATURES = flags.DEFINE_integer('features', 102, 'Per-frame vector length (P).')
_VARIANTS = flags.DEFINE_list('variants', ['current'],
                              "'current', NAME=current and/or NAME=PATH to a restormer.py-like file.")
_REPEATS = flags.DEFINE_integer('repeats', 3, 'Timed calls per variant (median shown).')
_MODES = flags.DEFINE_list('modes', ['fwd', 'fwdbwd'], "'fwd' and/or 'fwdbwd'.")
_OFFICIAL_FWD = flags.DEFINE_float('official_fwd', 1.38, 'Official PyTorch forward, seconds.')
_OFFICIAL_FWDBWD = flags.DEFINE_float('official_fwdbwd', 2.95,
                                      'Official PyTorch forward+backward, seconds.')


def _load(spec: str):
  """(name, module) from 'current' or NAME=PATH."""
  name, _, path = spec.partition('=')
  if spec == 'current' or path == 'current':
    from banet_jax.model import restormer  # pylint: disable=g-import-not-at-top
    return name, restormer
  if not path:
    raise ValueError(f'--variants entry {spec!r}: expected current, NAME=current or NAME=PATH')
  mod_spec = importlib.util.spec_from_file_location(f'_restormer_variant_{name}', path)
  module = importlib.util.module_from_spec(mod_spec)
  sys.modules[mod_spec.name] = module  # Flax's dataclass transform looks the module up
  mod_spec.loader.exec_module(module)
  return name, module


def _random_params(model, x, seed=0):
  """Parameters from the shapes (numpy, fast): kernels U(+-1/sqrt(fan_in)), biases and the
  LayerNorm/temperature offsets small normals, as the tests do."""
  rng = np.random.default_rng(seed)
  shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), x))['params']

  def make(path, s):
    if len(s.shape) == 4:
      bound = 1.0 / math.sqrt(np.prod(s.shape[:3]))
      return jnp.asarray(rng.uniform(-bound, bound, s.shape), s.dtype)
    if path[-1].key in ('scale', 'temperature'):
      return jnp.asarray(1.0 + 0.1 * rng.normal(size=s.shape), s.dtype)
    return jnp.asarray(0.1 * rng.normal(size=s.shape), s.dtype)

  return jax.tree_util.tree_map_with_path(make, shapes)


def _jax_runner(module, config, x, target, params):
  model = module.TemporalRestormer(
      dim=config.temporal_dim, num_blocks=config.temporal_blocks, heads=config.temporal_heads,
      ffn_expansion_factor=config.ffn_expansion_factor, bias=True, dtype=config.dtype,
      param_dtype=jnp.float32)
  if params is None:
    params = _random_params(model, x)

  def forward(p, x):
    return model.apply({'params': p}, x)

  def loss(p, x):
    return jnp.mean((forward(p, x).astype(jnp.float32) - target) ** 2)

  fns = {'fwd': jax.jit(forward).lower(params, x).compile() if 'fwd' in _MODES.value else None,
         'fwdbwd': (jax.jit(jax.value_and_grad(loss, argnums=(0, 1))).lower(params, x).compile()
                    if 'fwdbwd' in _MODES.value else None)}
  calls = {mode: (lambda f=f: jax.block_until_ready(f(params, x))) for mode, f in fns.items()}
  return params, calls


def main(argv):
  del argv
  config = get_config(_PRESET.value)
  modes = _MODES.value
  print(_common.platform_info(config.compute_dtype, with_load=True))
  print(f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}; "
        f'CPUs usable by this process: {len(os.sched_getaffinity(0))}; '
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '')!r}")
  shape = (_BATCH.value, config.chunk_length, _FEATURES.value)
  rng = np.random.default_rng(1)
  x = jnp.asarray(rng.normal(size=shape), jnp.float32)
  target = jnp.asarray(rng.normal(size=shape), jnp.float32)

  runners, params = {}, None
  for spec in _VARIANTS.value:
    name, module = _load(spec)
    start = time.perf_counter()
    params, runners[name] = _jax_runner(module, config, x, target, params)
    print(f'{name}: compiled {modes} in {time.perf_counter() - start:.1f} s', flush=True)
    for mode in modes:  # warm-up call (first-touch allocations)
      runners[name][mode]()

  def report(rep, times):
    print(f'repeat {rep + 1}/{_REPEATS.value}: ' + '; '.join(
        f'{name} ' + ' '.join(f'{mode} {times[(name, mode)][-1]:.3f}' for mode in modes)
        for name in runners), flush=True)

  times = _common.interleaved_times(
      {(name, mode): runners[name][mode] for mode in modes for name in runners},
      _REPEATS.value, report)

  official = {'fwd': _OFFICIAL_FWD.value, 'fwdbwd': _OFFICIAL_FWDBWD.value}
  label = {'fwd': 'fwd', 'fwdbwd': 'fwd+bwd'}
  first = next(iter(runners))
  med = {name: {mode: statistics.median(times[(name, mode)]) for mode in modes}
         for name in runners}
  print(f'\npreset {_PRESET.value}, input {shape} {config.compute_dtype}, '
        f'median of {_REPEATS.value}; load average now {os.getloadavg()[0]:.1f}\n')
  print('| variant | ' + ' | '.join(
      f'{label[m]} s | {label[m]} / {first} | {label[m]} / official {official[m]:.2f} s'
      for m in modes) + ' |')
  print('|---|' + '---|---|---|' * len(modes))
  for name in runners:
    print(f'| {name} | ' + ' | '.join(
        f'{med[name][m]:.3f} | {med[name][m] / med[first][m]:.3f} | '
        f'{med[name][m] / official[m]:.2f}' for m in modes) + ' |')


if __name__ == '__main__':
  app.run(main)

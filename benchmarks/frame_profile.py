r"""Where the stage-1 frame model's time goes, and the encoder's ops against flax's.

COMMAND:
  python benchmarks/frame_profile.py                       # paper preset, B=1, forward
  python benchmarks/frame_profile.py --mode=grad           # forward+backward (slow on CPU)
  python benchmarks/frame_profile.py --ops=flax            # with flax's GroupNorm and 1x1 nn.Conv
  python benchmarks/frame_profile.py --ops=flax,project --repeats=5 --top=0 \
      --modes=fwd,grad --batch=2                           # the two, timed interleaved

Runs `BANetFrame` (random inputs, initial parameters) once to compile and warm up, then
once under `jax.profiler.trace`. Each executed XLA thunk in the trace is mapped to its
instruction in the compiled HLO and counted as `conv` (its computation holds a
convolution), `dot`, `reduce` (mostly GroupNorm statistics), `concatenate` or `other`
(elementwise fusions, copies, pads). Prints the wall time of the traced call, the summed
thunk time per kind (more than the wall time when thunks run at once on several threads),
the convolutions' FLOPs from the HLO shapes and their rate over the wall time, and the
slowest individual thunks with the layer they come from.

`--ops` names encoder variants, all with the same parameters and inputs: `project` is
banet_jax as it is; `flax` swaps `hourglass.GroupNorm` for `flax.linen.GroupNorm` (same
formula) and `hourglass.Conv1x1` for `nn.Conv(features, (1, 1))` (same parameters), i.e. the
encoder before issue 17. The first variant is traced (unless --top=0 and --repeats are
given); with --repeats > 0 every variant's --modes are also timed, interleaved (call 1 of
each variant, then call 2, ..., the order rotated every repeat), median shown.
"""

from __future__ import annotations

import collections
import glob
import gzip
import json
import pathlib
import re
import statistics
import sys
import tempfile
import time

from absl import app
from absl import flags
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

if not __package__:  # run as a script: only benchmarks/ is on sys.path, not the repository
  sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from banet_jax.model import hourglass  # pylint: disable=g-import-not-at-top,wrong-import-position
from banet_jax.model.banet import BANet, PRESETS, get_config  # pylint: disable=g-import-not-at-top,wrong-import-position
from benchmarks import _common  # pylint: disable=g-import-not-at-top,wrong-import-position

_PRESET = flags.DEFINE_string('preset', 'paper', f'From {sorted(PRESETS)}.')
_BATCH = flags.DEFINE_integer('batch', 1, 'Two-view frames per call.')
_MODE = flags.DEFINE_enum('mode', 'fwd', ['fwd', 'grad'],
                          'What is traced. fwd: the forward; grad: the gradient of a squared '
                          'output w.r.t. the parameters (forward+backward).')
_OPS = flags.DEFINE_list('ops', ['project'], "Encoder variants: 'project' and/or 'flax'.")
_TOP = flags.DEFINE_integer('top', 15, 'Slowest thunks listed; 0 with --repeats: no trace.')
_REPEATS = flags.DEFINE_integer('repeats', 0, 'Timed calls per variant and mode (0: none).')
_MODES = flags.DEFINE_list('modes', ['fwd'], "Timed with --repeats: 'fwd' and/or 'grad'.")

_NAME = re.compile(r'\s*(?:ROOT )?%?([\w.\-]+) = ')
_CALLS = re.compile(r'calls=%?([\w.\-]+)')
_OP_NAME = re.compile(r'op_name="([^"]+)"')
_CONV = re.compile(r'\s*(?:ROOT )?%?[\w.\-]+ = f32\[([\d,]+)\]\S* convolution\('
                   r'%?[\w.\-]+, %?([\w.\-]+)\)')
_SHAPE = re.compile(r'\s*(?:ROOT )?%?([\w.\-]+) = \w+\[([\d,]*)\]')


def _flax_group_norm(groups, dtype, param_dtype, name):
  return nn.GroupNorm(num_groups=groups, epsilon=hourglass.GN_EPSILON, dtype=dtype,
                      param_dtype=param_dtype, name=name)


def _flax_conv1x1(features, use_bias=True, kernel_init=hourglass.CONV_INIT, dtype=jnp.float32,
                  param_dtype=jnp.float32, name=None):
  return nn.Conv(features, (1, 1), use_bias=use_bias, kernel_init=kernel_init, dtype=dtype,
                 param_dtype=param_dtype, name=name)


_VARIANTS = {
    'project': (hourglass._group_norm, hourglass.Conv1x1),  # pylint: disable=protected-access
    'flax': (_flax_group_norm, _flax_conv1x1),
}


def _compile(net, variant, mode, params, inputs):
  """The jitted fwd or grad of `net.frame`, traced with `variant`'s encoder ops."""
  hourglass._group_norm, hourglass.Conv1x1 = _VARIANTS[variant]  # pylint: disable=protected-access

  def forward(p, i):
    return net.frame.apply({'params': p}, *i)

  fn = jax.jit(forward if mode == 'fwd' else
               jax.grad(lambda p, i: jnp.sum(forward(p, i) ** 2)))
  try:
    return fn.lower(params, inputs).compile()
  finally:
    hourglass._group_norm, hourglass.Conv1x1 = _VARIANTS['project']  # pylint: disable=protected-access


def _computations(hlo: str) -> dict[str, str]:
  """Computation name -> its body text; the entry computation is 'ENTRY'."""
  comps, name = {}, None
  for line in hlo.splitlines():
    if line and not line.startswith(' ') and line.rstrip().endswith('{'):
      name = 'ENTRY' if line.startswith('ENTRY') else line.split()[0].lstrip('%')
      comps[name] = []
    elif name is not None:
      comps[name].append(line)
  return {k: '\n'.join(v) for k, v in comps.items()}


def _kind(body: str) -> str:
  for op, kind in ((' convolution(', 'conv'), (' dot(', 'dot'), (' reduce(', 'reduce'),
                   (' concatenate(', 'concatenate')):
    if op in body:
      return kind
  return 'other'


def _conv_gflop(hlo: str) -> float:
  """2 * output elements * (kh * kw * cin) summed over the HLO's f32 convolutions."""
  shapes = {m.group(1): [int(v) for v in m.group(2).split(',') if v]
            for m in map(_SHAPE.match, hlo.splitlines()) if m}
  total = 0.0
  for line in hlo.splitlines():
    m = _CONV.match(line)
    if m:
      kernel = shapes[m.group(2)]  # HWIO
      total += 2 * np.prod([int(v) for v in m.group(1).split(',')]) * np.prod(kernel[:3])
  return total / 1e9


def _time(net, params, inputs) -> None:
  """Times every --ops variant's --modes interleaved and prints one table."""
  for variant in _OPS.value:
    if variant not in _VARIANTS:
      raise app.UsageError(f'--ops: unknown variant {variant!r}; choose from {sorted(_VARIANTS)}')
  calls = {(v, m): _compile(net, v, m, params, inputs) for v in _OPS.value for m in _MODES.value}
  for fn in calls.values():  # warm-up (first-touch allocations)
    jax.block_until_ready(fn(params, inputs))
  def report(rep, times):
    print(f'repeat {rep + 1}: ' + '; '.join(f'{v} {m} {t[-1]:.2f}' for (v, m), t in times.items()),
          flush=True)

  times = _common.interleaved_times(
      {key: (lambda fn=fn: jax.block_until_ready(fn(params, inputs))) for key, fn in calls.items()},
      _REPEATS.value, report)
  first = _OPS.value[0]
  print(f'\npreset {_PRESET.value}, B={_BATCH.value}, median of {_REPEATS.value} interleaved calls\n')
  print('| ops | ' + ' | '.join(f'{m} s | {m} / {first}' for m in _MODES.value) + ' |')
  print('|---|' + '---|---|' * len(_MODES.value))
  for v in _OPS.value:
    med = {m: statistics.median(times[(v, m)]) for m in _MODES.value}
    base = {m: statistics.median(times[(first, m)]) for m in _MODES.value}
    print(f'| {v} | ' + ' | '.join(f'{med[m]:.2f} | {med[m] / base[m]:.3f}'
                                   for m in _MODES.value) + ' |')


def _trace(net, params, inputs) -> None:
  """Traces one call of the first variant's --mode and prints the time per kind of op."""
  compiled = _compile(net, _OPS.value[0], _MODE.value, params, inputs)
  hlo = compiled.as_text()
  jax.block_until_ready(compiled(params, inputs))
  with tempfile.TemporaryDirectory() as trace_dir:
    with jax.profiler.trace(trace_dir):
      start = time.perf_counter()
      jax.block_until_ready(compiled(params, inputs))
      wall = time.perf_counter() - start
    (trace_file,) = glob.glob(f'{trace_dir}/**/*.trace.json.gz', recursive=True)
    with gzip.open(trace_file) as f:
      events = json.load(f)['traceEvents']

  comps = _computations(hlo)
  instructions = {}  # thunk name -> (kind, layer)
  for line in comps['ENTRY'].splitlines():
    name, calls, op_name = _NAME.match(line), _CALLS.search(line), _OP_NAME.search(line)
    if name:
      body = comps.get(calls.group(1), '') if calls else line
      layer = op_name.group(1).split('/frame/')[-1] if op_name else ''
      instructions[name.group(1)] = (_kind(body), layer)
  per_kind, count, thunks = collections.Counter(), collections.Counter(), []
  for e in events:
    if e.get('ph') == 'X' and e['name'] in instructions:
      kind, layer = instructions[e['name']]
      per_kind[kind] += e['dur'] / 1e6
      count[kind] += 1
      thunks.append((e['dur'] / 1e6, e['name'], kind, layer))
  busy = sum(per_kind.values())
  gflop = _conv_gflop(hlo)
  print(f'\npreset {_PRESET.value}, B={_BATCH.value}, {_MODE.value}, ops {_OPS.value[0]}: '
        f'wall {wall:.2f} s (traced call); thunk time {busy:.2f} s; convolutions '
        f'{gflop:.0f} GFLOP, {gflop / wall:.0f} GFLOP/s over the wall time\n')
  print('| kind | thunks | thunk s | share |')
  print('|---|---|---|---|')
  for kind, seconds in per_kind.most_common():
    print(f'| {kind} | {count[kind]} | {seconds:.3f} | {seconds / busy:.0%} |')
  if _TOP.value:
    print('\n| slowest thunks | kind | s | layer (empty: a backward op) |\n|---|---|---|---|')
    for seconds, name, kind, layer in sorted(thunks, reverse=True)[:_TOP.value]:
      print(f'| {name} | {kind} | {seconds:.3f} | {layer[:80]} |')


def main(argv):
  del argv
  net = BANet.create(get_config(_PRESET.value))
  images, pixels, points = net.example_inputs(_BATCH.value, None)
  rng = np.random.default_rng(0)
  size = net.config.image_size
  inputs = (jnp.asarray(rng.normal(size=images.shape), jnp.float32),
            jnp.asarray(rng.uniform(0, size, size=pixels.shape), jnp.float32),
            jnp.asarray(rng.normal(scale=0.3, size=points.shape), jnp.float32))
  params = jax.jit(net.init_frame)(jax.random.key(0))['params']
  print(_common.platform_info('float32', with_load=True))
  if _TOP.value or not _REPEATS.value:
    _trace(net, params, inputs)
  if _REPEATS.value:
    _time(net, params, inputs)


if __name__ == '__main__':
  app.run(main)

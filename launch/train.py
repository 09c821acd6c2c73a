r"""Train BANet (stage 1: frames; stage 2: chunks, from a stage-1 checkpoint).

    python -m launch.train --flagfile=launch/flags/smoke.flags --workdir=/tmp/banet_smoke
    python -m launch.train --flagfile=launch/flags/tiny_cpu.flags --workdir=runs/tiny_s1
    python -m launch.train --flagfile=launch/flags/tiny_cpu_stage2.flags \
        --init_from=runs/tiny_s1 --workdir=runs/tiny_s2

Flags after a --flagfile override it. Re-running a command with the same --workdir resumes
from its latest checkpoint (SIGTERM saves one and exits). Outputs in the workdir:
checkpoints/<step>/, metrics.jsonl, tensorboard/, config.json. See banet_jax/train.py.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys

from absl import app
from absl import flags
from absl import logging
import jax

from banet_jax import checkpoints
from banet_jax import data
from banet_jax import run_config
from banet_jax import train
from banet_jax.model.banet import APPEARANCES, COMPUTE_DTYPES, POINT_ORDERS

# XLA options that cut CPU compile time ~2.5x for ~20 % slower steps (tests, smoke runs).
_FAST_COMPILE_XLA_FLAGS = ('--xla_backend_optimization_level=0 '
                           '--xla_llvm_disable_expensive_passes=true')


# BANetConfig fields with flags of their own (None: the preset's value); every other model
# field goes through --model_override.
_MODEL_FLAGS = {
    'image_size': 'Override the preset crop size (data are resized to it).',
    'num_points': 'Override the preset number of query points.',
    'point_order': "Override the preset query-point order: 'random' (official) or 'height' "
                   '(sorted by world height).',
    'appearance': "Override what the encoder sees: 'rgb' (official: the masked colour crops) "
                  "or 'silhouette' (the masks only).",
    'chunk_length': 'Override the preset chunk length (multiple of 8).',
    'compute_dtype': 'Override the preset compute dtype.',
}
_MODEL_FLAG_CHOICES = {'point_order': list(POINT_ORDERS), 'appearance': list(APPEARANCES),
                       'compute_dtype': sorted(COMPUTE_DTYPES)}
# TrainConfig fields set through repeated NAME=VALUE flags instead of one flag each.
_MAPPING_FIELDS = {'model_overrides': 'model_override', 'loss_weights': 'loss_weight'}


def define_flags(fv: flags.FlagValues = flags.FLAGS) -> None:
  """Registers the training flags on `fv` (tests use a fresh FlagValues).

  One flag per `run_config.TrainConfig` field, with the field's default and the help text
  of its metadata, so a setting is defined once; plus --workdir, the JAX runtime options,
  and the model and loss-weight overrides.
  """
  flags.DEFINE_string('workdir', None, 'Checkpoints, logs and config of the run (resumed if it '
                      'has any).', flag_values=fv)
  for field in dataclasses.fields(run_config.TrainConfig):
    if field.name in _MAPPING_FIELDS:
      continue
    help_text, choices = field.metadata['help'], field.metadata.get('choices')
    kind = field.type.split('|')[0].strip()  # 'int | None' -> 'int' (annotations are strings)
    if choices:
      flags.DEFINE_enum(field.name, field.default, list(choices), help_text, flag_values=fv)
    else:
      define = {'str': flags.DEFINE_string, 'int': flags.DEFINE_integer,
                'float': flags.DEFINE_float, 'bool': flags.DEFINE_bool}[kind]
      define(field.name, field.default, help_text, flag_values=fv)
  for name, help_text in _MODEL_FLAGS.items():
    if name in _MODEL_FLAG_CHOICES:
      flags.DEFINE_enum(name, None, _MODEL_FLAG_CHOICES[name], help_text, flag_values=fv)
    else:
      flags.DEFINE_integer(name, None, help_text, flag_values=fv)
  flags.DEFINE_multi_string('model_override', [], 'Any BANetConfig field, NAME=VALUE (JSON '
                            'value, e.g. num_stacks=1 or stem_widths=[8,16]).', flag_values=fv)
  flags.DEFINE_multi_string('loss_weight', [], 'Weight of a loss term, TERM=VALUE (angle, '
                            'scale, point, range, reprojection, velocity, acceleration, '
                            'scale_smoothness; official: 1, 1, 100, 1, then 0).',
                            flag_values=fv)
  flags.DEFINE_string('jax_cache_dir', '~/.cache/banet_jax/jax', "Persistent JAX compilation "
                      "cache ('' to disable); the skeleton layer takes tens of seconds to "
                      'compile on CPU.', flag_values=fv)
  flags.DEFINE_bool('cpu_fast_compile', False, 'Lower XLA optimisation levels: compiles ~2.5x '
                    'faster, steps run ~20 % slower (tests and smoke runs).', flag_values=fv)


def config_from_flags(fv: flags.FlagValues = flags.FLAGS) -> run_config.TrainConfig:
  """The TrainConfig the parsed flags describe (ValueError on bad values)."""
  overrides = {}
  for item in fv.model_override:
    name, sep, value = item.partition('=')
    if not sep:
      raise ValueError(f'--model_override expects NAME=VALUE, got {item!r}')
    try:
      overrides[name.strip()] = json.loads(value)
    except json.JSONDecodeError:
      overrides[name.strip()] = value
  for name in _MODEL_FLAGS:
    if fv[name].value is not None:
      overrides[name] = fv[name].value
  weights = {}
  for item in fv.loss_weight:
    name, _, value = item.partition('=')
    try:  # no '=' leaves value empty, which float() refuses too
      weights[name.strip()] = float(value)
    except ValueError:
      raise ValueError(f'--loss_weight expects TERM=NUMBER, got {item!r}') from None
  values = {f.name: fv[f.name].value for f in dataclasses.fields(run_config.TrainConfig)
            if f.name not in _MAPPING_FIELDS}
  return run_config.TrainConfig(model_overrides=overrides, loss_weights=weights, **values)


def configure_jax(fv: flags.FlagValues = flags.FLAGS) -> None:
  """Applies --cpu_fast_compile and --jax_cache_dir (before the first computation)."""
  if fv.cpu_fast_compile:
    # Read when the CPU backend starts, i.e. at the first computation (none ran yet).
    os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') + ' '
                               + _FAST_COMPILE_XLA_FLAGS).strip()
    jax.config.update('jax_disable_most_optimizations', True)
  if fv.jax_cache_dir:
    jax.config.update('jax_compilation_cache_dir', os.path.expanduser(fv.jax_cache_dir))


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  fv = flags.FLAGS
  try:
    config = config_from_flags(fv)
  except ValueError as e:
    raise app.UsageError(str(e)) from e
  configure_jax(fv)
  if not fv['verbosity'].present:  # orbax logs every save step at INFO
    logging.set_verbosity(logging.WARNING)
  try:
    summary = train.train_and_evaluate(config, fv.workdir)
  except (train.TrainingError, data.DatasetNotFoundError) as e:
    print(f'error: {e}', file=sys.stderr, flush=True)
    sys.exit(1)
  except checkpoints.CheckpointError as e:
    print(f'error: {e}', file=sys.stderr, flush=True)
    sys.stdout.flush()
    # A failed orbax restore leaves tensorstore reads in flight whose callbacks print
    # 'Event loop is closed' tracebacks during interpreter teardown: skip it.
    os._exit(1)  # pylint: disable=protected-access
  if summary['stopped_by']:
    print(f'stopped by {summary["stopped_by"]} at step {summary["step"]}', flush=True)


if __name__ == '__main__':
  # Defined here, not at import: tests and tools import this module next to other absl
  # modules (e.g. odah_tfds.make_subjects also has --seed) and use their own FlagValues.
  define_flags()
  flags.mark_flag_as_required('workdir')
  app.run(main)

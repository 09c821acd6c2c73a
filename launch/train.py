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

import json
import os
import sys

from absl import app
from absl import flags
from absl import logging
import jax

from banet_jax import augment
from banet_jax import checkpoints
from banet_jax import data
from banet_jax import train
from banet_jax.model.banet import COMPUTE_DTYPES, POINT_ORDERS, PRESETS

# XLA options that cut CPU compile time ~2.5x for ~20 % slower steps (tests, smoke runs).
_FAST_COMPILE_XLA_FLAGS = ('--xla_backend_optimization_level=0 '
                           '--xla_llvm_disable_expensive_passes=true')


def define_flags(fv: flags.FlagValues = flags.FLAGS) -> None:
  """Registers the training flags on `fv` (tests use a fresh FlagValues)."""
  d = train.TrainConfig()
  s, i, f, b, e = (flags.DEFINE_string, flags.DEFINE_integer, flags.DEFINE_float,
                   flags.DEFINE_bool, flags.DEFINE_enum)
  s('workdir', None, 'Checkpoints, logs and config of the run (resumed if it has any).',
    flag_values=fv)
  # Data.
  s('dataset', d.dataset, "'odah/<config>' (TFDS, built with --file_format=array_record) or "
    "'synthetic' (generated stick figures; no files).", flag_values=fv)
  s('data_dir', None, 'TFDS data directory (default: $TFDS_DATA_DIR or ~/tensorflow_datasets).',
    flag_values=fv)
  s('train_split', d.train_split, 'Training split.', flag_values=fv)
  s('eval_split', d.eval_split, 'Validation split (used when --eval_every > 0).', flag_values=fv)
  i('synthetic_clips', d.synthetic_clips, 'Clips per split of --dataset=synthetic.',
    flag_values=fv)
  i('synthetic_frames', d.synthetic_frames, 'Frames per synthetic clip.', flag_values=fv)
  i('synthetic_crop_size', d.synthetic_crop_size, 'Crop size of synthetic clips.',
    flag_values=fv)
  i('data_threads', d.data_threads, 'Input-pipeline threads (grain).', flag_values=fv)
  i('prefetch', d.prefetch, 'Batches prefetched by the input pipeline.', flag_values=fv)
  i('clip_cache', d.clip_cache, 'Decoded clips kept in memory by the input pipeline.',
    flag_values=fv)
  e('augment', d.augment, sorted(augment.PRESETS), "Training-time degradations toward real "
    "video (banet_jax/augment.py): 'real' (segmenter-like masks, exposure, noise, blur, "
    "JPEG) or 'none'.", flag_values=fv)
  # Model.
  i('stage', d.stage, '1: per-frame model; 2: temporal model on chunks.', flag_values=fv)
  e('preset', d.preset, sorted(PRESETS), 'Network sizes (banet_jax/model/banet.py).',
    flag_values=fv)
  i('image_size', None, 'Override the preset crop size (data are resized to it).',
    flag_values=fv)
  i('num_points', None, 'Override the preset number of query points.', flag_values=fv)
  e('point_order', None, list(POINT_ORDERS), "Override the preset query-point order: "
    "'random' (official) or 'height' (sorted by world height).", flag_values=fv)
  i('chunk_length', None, 'Override the preset chunk length (multiple of 8).', flag_values=fv)
  e('compute_dtype', None, sorted(COMPUTE_DTYPES), 'Override the preset compute dtype.',
    flag_values=fv)
  flags.DEFINE_multi_string('model_override', [], 'Any BANetConfig field, NAME=VALUE (JSON '
                            'value, e.g. num_stacks=1 or stem_widths=[8,16]).', flag_values=fv)
  # Optimisation.
  i('batch_size', d.batch_size, 'Global batch: frames (stage 1) or chunks (stage 2).',
    flag_values=fv)
  i('num_steps', d.num_steps, 'Training steps.', flag_values=fv)
  f('learning_rate', d.learning_rate, 'Adam learning rate.', flag_values=fv)
  i('constant_steps', None, 'Steps at the full learning rate before the cosine decay '
    '(default: all).', flag_values=fv)
  i('decay_steps', d.decay_steps, 'Steps of cosine decay (0: constant learning rate).',
    flag_values=fv)
  f('final_learning_rate', d.final_learning_rate, 'Learning rate at the end of the decay.',
    flag_values=fv)
  f('b1', d.b1, 'Adam beta1 (official 0.5).', flag_values=fv)
  f('b2', d.b2, 'Adam beta2.', flag_values=fv)
  f('grad_clip_norm', d.grad_clip_norm, 'Global-norm gradient clipping (0: off).',
    flag_values=fv)
  flags.DEFINE_multi_string('loss_weight', [], 'Weight of a loss term, TERM=VALUE (angle, '
                            'scale, point, range, reprojection, velocity, acceleration, '
                            'scale_smoothness; official: 1, 1, 100, 1, then 0).',
                            flag_values=fv)
  s('freeze', d.freeze, "'auto' (stage 2: encoder, heads, to_one_scales, as the official "
    "code), 'none', or comma-separated parameter path prefixes.", flag_values=fv)
  s('init_from', None, 'Stage-1 workdir or checkpoint to initialise the frame model from.',
    flag_values=fv)
  # Parallelism and runtime.
  e('parallelism', d.parallelism, ['jit', 'pmap'], "Data parallelism: 'jit' (Mesh + "
    "NamedSharding) or 'pmap'.", flag_values=fv)
  b('multihost', d.multihost, 'Call jax.distributed.initialize() (multi-host runs).',
    flag_values=fv)
  s('jax_cache_dir', '~/.cache/banet_jax/jax', "Persistent JAX compilation cache ('' to "
    'disable); the skeleton layer takes tens of seconds to compile on CPU.', flag_values=fv)
  b('cpu_fast_compile', False, 'Lower XLA optimisation levels: compiles ~2.5x faster, steps '
    'run ~20 % slower (tests and smoke runs).', flag_values=fv)
  # Checkpoints and logs.
  i('checkpoint_every', d.checkpoint_every, 'Steps between checkpoints.', flag_values=fv)
  i('keep_checkpoints', d.keep_checkpoints, 'Checkpoints kept.', flag_values=fv)
  i('log_every', d.log_every, 'Steps between metric lines (means over the interval).',
    flag_values=fv)
  i('eval_every', d.eval_every, 'Steps between validation losses (0: never).', flag_values=fv)
  i('eval_batches', d.eval_batches, 'Validation batches per evaluation.', flag_values=fv)
  i('seed', d.seed, 'Parameter initialisation, shuffling and query points.', flag_values=fv)
  i('nan_at_step', d.nan_at_step, 'Test hook: poison the images of this step (1-based) with '
    'NaN to exercise the non-finite guard (0: off).', flag_values=fv)


def config_from_flags(fv: flags.FlagValues = flags.FLAGS) -> train.TrainConfig:
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
  for name in ('image_size', 'num_points', 'point_order', 'chunk_length', 'compute_dtype'):
    if fv[name].value is not None:
      overrides[name] = fv[name].value
  weights = {}
  for item in fv.loss_weight:
    name, _, value = item.partition('=')
    try:  # no '=' leaves value empty, which float() refuses too
      weights[name.strip()] = float(value)
    except ValueError:
      raise ValueError(f'--loss_weight expects TERM=NUMBER, got {item!r}') from None
  fields = {f for f in train.TrainConfig.__dataclass_fields__
            if f not in ('model_overrides', 'loss_weights')}
  values = {name: fv[name].value for name in fields}
  return train.TrainConfig(model_overrides=overrides, loss_weights=weights, **values)


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

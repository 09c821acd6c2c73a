r"""Evaluate a trained BANet on an ODAH split, next to the mean-pose baseline.

    python -m launch.eval --checkpoint=/tmp/banet_tiny/stage2 --dataset=odah/tiny --split=test \
        --out_dir=/tmp/banet_tiny/eval
    python -m launch.eval --checkpoint=runs/lab14_tiny_rgb_s0 --dataset=odah/lab \
        --families=balance,balance_reach          # only some motion families' clips

Writes metrics.json and metrics.md (coordinate MAE in degrees, its per-coordinate rows,
root-relative MPJPE of the 44 points in mm, body-scale error, and per coordinate whether
the prediction moves with the truth: correlation and spread ratio), coordinate_errors.png,
angle-curve plots for a few clips, and the predictions of a few clips as OpenSim files
(exports/<clip>.mot, .trc, .osim). Prints the tables.
"""

from __future__ import annotations

import pathlib
import sys

from absl import app
from absl import flags
from absl import logging

_CHECKPOINT = flags.DEFINE_string('checkpoint', None, "Training workdir, checkpoint folder, or "
                                  "release ('default': the shipped model).", required=True)
_DATASET = flags.DEFINE_string('dataset', None, "Dataset (default: the run's own).")
_DATA_DIR = flags.DEFINE_string('data_dir', None, 'TFDS data_dir (default: the run\'s / TFDS).')
_SPLIT = flags.DEFINE_string('split', 'test', 'Split to evaluate.')
_OUT_DIR = flags.DEFINE_string('out_dir', None, 'Output folder (default: <checkpoint>/eval_<split>).')
_MAX_CLIPS = flags.DEFINE_integer('max_clips', 0, 'Evaluate at most this many clips (0: all).')
_PLOT_CLIPS = flags.DEFINE_integer('plot_clips', 3, 'Clips to plot angle curves for.')
_EXPORT_CLIPS = flags.DEFINE_integer('export_clips', 3, 'Clips to export as .mot/.trc/.osim.')
_FAMILIES = flags.DEFINE_list('families', None, 'Only the clips of these motion families, '
                              "e.g. 'balance_reach' (default: all clips).")
_CUTOFF_HZ = flags.DEFINE_float('cutoff_hz', 0.0, 'Low-pass each clip\'s predicted coordinates '
                                 'at this cutoff (Hz) before measuring, as launch.predict '
                                 '--videos writes them (6: its default); 0: as predicted.')


def main(argv):
  del argv
  if not flags.FLAGS['verbosity'].present:  # orbax logs every restore step at INFO
    logging.set_verbosity(logging.WARNING)
  # Lazy: OpenSim + BANet stack, 2.8 s: not for --help.
  import opensim  # pylint: disable=g-import-not-at-top
  # Lazy: BANet stack: not for --help.
  from banet_jax import checkpoints, evaluation, released  # pylint: disable=g-import-not-at-top
  from banet_jax import data  # pylint: disable=g-import-not-at-top  (BANet stack: not for --help)
  opensim.Logger.setLevelString('error')
  try:
    path = released.resolve(_CHECKPOINT.value)
    if released.is_release(path):  # a shipped model: never write into the package
      default_out = pathlib.Path('outputs') / f'eval_{path.name}_{_SPLIT.value}'
    else:
      checkpoints.resolve(path)  # a clear error before anything else when there is none
      default_out = path / f'eval_{_SPLIT.value}'
    out_dir = pathlib.Path(_OUT_DIR.value or default_out)
    results = evaluation.evaluate_checkpoint(
        str(path), _SPLIT.value, out_dir, dataset=_DATASET.value, data_dir=_DATA_DIR.value,
        max_clips=_MAX_CLIPS.value, plot_clips=_PLOT_CLIPS.value,
        export_clips=_EXPORT_CLIPS.value, families=_FAMILIES.value,
        cutoff_hz=_CUTOFF_HZ.value or None)
  except (checkpoints.CheckpointError, released.ReleaseError, data.DatasetNotFoundError,
          ValueError) as e:
    sys.exit(f'error: {e}')
  print(f'\n{_SPLIT.value} split, checkpoint step {results["BANet"]["checkpoint_step"]}:\n')
  print((out_dir / 'metrics.md').read_text())
  print(f'written to {out_dir}')


if __name__ == '__main__':
  app.run(main)

r"""Predict OpenSim kinematics with a trained BANet and write the files OpenSim opens.

    # clips of a built ODAH split
    python -m launch.predict --checkpoint=/tmp/banet_tiny/stage2 --dataset=odah/tiny \
        --split=test --out_dir=/tmp/pred
    # your own two-view video: one .npz (format: banet_jax/inference.py docstring)
    python -m launch.predict --checkpoint=/tmp/banet_tiny/stage2 --input=trial.npz --out_dir=/tmp/pred

Per clip it writes <clip>.mot (coordinates, degrees), <clip>.osim (the model scaled by
OpenSim with the predicted body scales) and <clip>.trc (that model's markers), plus
predictions.npz with the raw arrays.
"""

from __future__ import annotations

import pathlib
import sys

from absl import app
from absl import flags
from absl import logging
import numpy as np

_CHECKPOINT = flags.DEFINE_string('checkpoint', None, 'Training workdir or checkpoint folder.',
                                  required=True)
_INPUT = flags.DEFINE_string('input', None, 'A two-view .npz (instead of --dataset).')
_DATASET = flags.DEFINE_string('dataset', None, "ODAH dataset, e.g. odah/tiny (default: the run's).")
_DATA_DIR = flags.DEFINE_string('data_dir', None, 'TFDS data_dir.')
_SPLIT = flags.DEFINE_string('split', 'test', 'Split (with --dataset).')
_MAX_CLIPS = flags.DEFINE_integer('max_clips', 0, 'At most this many clips (0: all).')
_OUT_DIR = flags.DEFINE_string('out_dir', None, 'Output folder.', required=True)


def _clips(predictor):
  """(clip_id, clip dict, fps) to predict."""
  from banet_jax import data, inference  # pylint: disable=g-import-not-at-top
  if _INPUT.value:
    frames = inference.load_frames_npz(_INPUT.value)
    clip = inference.clip_from_frames(frames, predictor.net.config.image_size)
    yield pathlib.Path(_INPUT.value).stem, clip, float(frames['fps'])
    return
  config = predictor.train_config
  source = data.open_source(_DATASET.value or config.dataset, _SPLIT.value,
                            _DATA_DIR.value or config.data_dir, layout=predictor.layout,
                            synthetic_clips=config.synthetic_clips,
                            synthetic_frames=config.synthetic_frames,
                            synthetic_crop_size=config.synthetic_crop_size)
  count = len(source) if _MAX_CLIPS.value <= 0 else min(_MAX_CLIPS.value, len(source))
  for i in range(count):
    clip = source[i]
    clip_id = clip.get('clip_id', f'clip{i:04d}')
    clip_id = clip_id.decode() if isinstance(clip_id, bytes) else str(clip_id)
    yield clip_id, clip, float(np.asarray(clip.get('fps', 60.0)))


def main(argv):
  del argv
  if not flags.FLAGS['verbosity'].present:  # orbax logs every restore step at INFO
    logging.set_verbosity(logging.WARNING)
  import opensim  # pylint: disable=g-import-not-at-top
  from banet_jax import checkpoints, data, export  # pylint: disable=g-import-not-at-top
  from banet_jax.inference import Predictor  # pylint: disable=g-import-not-at-top
  opensim.Logger.setLevelString('error')
  out_dir = pathlib.Path(_OUT_DIR.value)
  try:
    predictor = Predictor.restore(_CHECKPOINT.value)
    arrays = {}
    for clip_id, clip, fps in _clips(predictor):
      pred = predictor.predict_clip(clip)
      paths = export.export_clip(out_dir, clip_id, pred['coordinates'], pred['scales'], fps,
                                 model_path=predictor.layout.skeleton.source)
      arrays[f'{clip_id}/coordinates'] = pred['coordinates']
      arrays[f'{clip_id}/scales'] = pred['scales']
      print(f'{clip_id}: {len(pred["coordinates"])} frames -> {paths["mot"]}, {paths["osim"]}, '
            f'{paths["trc"]}')
  except (checkpoints.CheckpointError, data.DatasetNotFoundError, ValueError) as e:
    sys.exit(f'error: {e}')
  np.savez(out_dir / 'predictions.npz', **arrays)
  print(f'written to {out_dir}')


if __name__ == '__main__':
  app.run(main)

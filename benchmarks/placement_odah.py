r"""How well `capture.placement` puts the body where it stands: ODAH, where the truth is known.

    .venv/bin/python benchmarks/placement_odah.py --checkpoint=runs/main_stage2 \
        --dataset=odah/small --split=test

BANet predicts no pelvis translation; on real captures `placement.pelvis_translation`
moves the predicted pose onto landmarks triangulated from the calibrated cameras. ODAH
clips carry the true translation and the two calibrated cameras, so the estimate can be
scored. The landmarks are simulated: the true joint centres (hips, knees, ankles,
shoulders, elbows, wrists) projected into both views, with Gaussian pixel noise of
`--noise` times the person's height in the image (BlazePose's typical error on lab video
is a few percent of it), then triangulated. Rows: the predicted pose or the true pose
placed on them, and no placement (translation 0, what the network alone gives). Prints the
error of the pelvis translation (mm): mean, median, 95th percentile, and the vertical part.
"""

from __future__ import annotations

import sys
import pathlib

from absl import app, flags, logging
import numpy as np

_CHECKPOINT = flags.DEFINE_string('checkpoint', 'runs/main_stage2', 'BANet checkpoint or run.')
_DATASET = flags.DEFINE_string('dataset', None, "ODAH dataset (default: the checkpoint's).")
_SPLIT = flags.DEFINE_string('split', 'test', 'Split.')
_MAX_CLIPS = flags.DEFINE_integer('max_clips', 0, 'At most this many clips (0: all).')
_NOISE = flags.DEFINE_list('noise', ['0', '0.01', '0.03'], 'Landmark noise, fractions of the '
                           "person's height in the image.")


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  from banet_jax import data, geometry  # pylint: disable=g-import-not-at-top
  from banet_jax.capture import placement  # pylint: disable=g-import-not-at-top
  from banet_jax.capture.calibration import CameraCalibration  # pylint: disable=g-import-not-at-top
  from banet_jax.inference import Predictor  # pylint: disable=g-import-not-at-top
  from banet_jax.skeleton import forward_kinematics  # pylint: disable=g-import-not-at-top
  from benchmarks import _common  # pylint: disable=g-import-not-at-top

  predictor = Predictor.restore(_CHECKPOINT.value)
  skel = predictor.layout.skeleton
  config = predictor.train_config
  dataset = _DATASET.value or config.dataset
  source = data.open_source(dataset, _SPLIT.value, config.data_dir, layout=predictor.layout)
  count = len(source) if _MAX_CLIPS.value <= 0 else min(_MAX_CLIPS.value, len(source))
  joints, marks = placement.matched_joints(skel)
  trans = placement.global_translation_indices(skel)
  rng = np.random.default_rng(0)
  errors = {}
  for i in range(count):
    clip = source[i]
    q_true = np.asarray(clip['coordinates'], np.float64)
    s_true = np.asarray(clip['scales'], np.float64)
    pred = predictor.predict_clip(clip)
    t = len(q_true)
    centres = np.asarray(forward_kinematics(skel, q_true, np.broadcast_to(
        s_true, (t,) + s_true.shape)).joint_centers, np.float64)[:, joints]
    size = tuple(int(v) for v in np.asarray(clip.get('image_size', (512, 512))).reshape(-1)[:2])
    cams = [CameraCalibration(f'view{v}', size, np.asarray(k, np.float64), np.zeros(5),
                              np.asarray(r, np.float64), np.asarray(tt, np.float64))
            for v, (k, r, tt) in enumerate(zip(clip['camera_K'], clip['camera_R'],
                                               clip['camera_t']))]
    pixels = np.stack([geometry.project(centres, c.K, c.R, c.t) for c in cams])  # (2, T, M, 2)
    height = np.ptp(pixels[..., 1], axis=-1)[..., None, None]  # (2, T, 1, 1)
    errors.setdefault('no placement (translation 0)', []).append(
        np.linalg.norm(q_true[:, trans], axis=-1))
    for noise in map(float, _NOISE.value):
      noisy = pixels + rng.normal(0, 1, pixels.shape) * noise * height
      lm = np.full((2, t, 33, 2), np.nan)
      lm[:, :, marks] = noisy
      vis = np.zeros((2, t, 33))
      vis[:, :, marks] = 1.0
      points, _ = placement.triangulate_landmarks(lm, vis, cams, max_reprojection_px=1e9)
      for label, q, s in (('predicted pose', pred['coordinates'], pred['scales']),
                          ('true pose', q_true, s_true)):
        est, _ = placement.pelvis_translation(skel, q, s, points)
        errors.setdefault(f'{label}, noise {noise:g}', []).append(
            np.linalg.norm(est - q_true[:, trans], axis=-1))
        errors.setdefault(f'{label}, noise {noise:g} (vertical)', []).append(
            np.abs(est[:, 1] - q_true[:, trans[1]]))
  print(_common.platform_info())
  print(f'\n{dataset} {_SPLIT.value}: {count} clips, checkpoint {_CHECKPOINT.value} '
        f'(step {predictor.step})\n')
  print('| pelvis translation error (mm) | mean | median | p95 |\n|---|---|---|---|')
  for label, values in errors.items():
    v = 1000 * np.concatenate(values)
    print(f'| {label} | {v.mean():.0f} | {np.median(v):.0f} | {np.percentile(v, 95):.0f} |')


if __name__ == '__main__':
  sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
  app.run(main)

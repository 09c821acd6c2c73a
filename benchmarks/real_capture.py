r"""BANet on a real capture: Pose2Sim's demo trial (four calibrated Qualisys cameras).

    .venv/bin/python benchmarks/real_capture.py --checkpoint=runs/main_stage2 --out_dir=outputs/real_capture

No ground truth exists for the capture, so it measures what can be measured without one
and prints Markdown tables:
1. the Qualisys distortion convention: the four cameras' BlazePose landmarks
   triangulated and reprojected with the file's distortion coefficients as written and
   divided by 64 (Pose2Sim's converter); median reprojection error in pixels;
2. cross-pair consistency: BANet on cam01+cam04 and, separately, on cam02+cam03 (all four
   cameras place the body); mean absolute difference per coordinate, degrees;
3. reprojection: the predicted joint centres (hips, knees, ankles, shoulders, elbows,
   wrists) projected into all four cameras against the BlazePose landmarks of the same
   frames (visibility >= 0.5); median error as a fraction of the person's height in the
   image (the landmarks' vertical extent), next to the mean pose of the training data
   (its joint angles, the predicted pelvis orientation, placed the same way);
4. seconds per frame of each stage of a two-view run (cam01 + cam04 videos only).
Outputs of both pairs (OpenSim files, overlays, curves, report.json) go to --out_dir.
"""

from __future__ import annotations

import json
import pathlib
import sys
import time

from absl import app, flags, logging
import numpy as np

_CHECKPOINT = flags.DEFINE_string('checkpoint', 'runs/main_stage2', 'BANet checkpoint or run.')
_OUT_DIR = flags.DEFINE_string('out_dir', 'outputs/real_capture', 'Output folder.')
_NUM_FRAMES = flags.DEFINE_integer('num_frames', 0, 'Output frames (0: the whole trial).')
_PAIRS = flags.DEFINE_list('pairs', ['cam01+cam04', 'cam02+cam03'], 'Network camera pairs.')
_BASELINE_DATASET = flags.DEFINE_string('baseline_dataset', None, "Training data of the mean "
                                        "pose (default: the checkpoint's dataset).")

def _table(header, rows):
  lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
  lines += ['| ' + ' | '.join(str(c) for c in row) + ' |' for row in rows]
  return '\n'.join(lines)


def landmark_reprojection_px(landmarks, visibility, calibration):
  """Median reprojection error (pixels) of landmarks triangulated from all cameras (points
  seen by three or more cameras, no outlier rejection)."""
  from banet_jax.capture import placement  # pylint: disable=g-import-not-at-top
  points, used = placement.triangulate_landmarks(landmarks, visibility, calibration.cameras,
                                                 max_reprojection_px=1e9)
  errors = []
  for c, cam in enumerate(calibration.cameras):
    ok = (visibility[c] >= 0.5) & (used >= 3) & np.isfinite(points[..., 0])
    errors.append(np.linalg.norm(cam.project(points[ok]) - landmarks[c][ok], axis=-1))
  return float(np.median(np.concatenate(errors)))


def checkerboard_reprojection_px(folder, calibration, corners=(4, 7), square=0.06):
  """(images, RMS px, median px): the demo's intrinsics checkerboards (Pose2Sim's Config:
  4 x 7 inner corners, 60 mm squares) posed by solvePnP with each camera's K and
  distortion, corners reprojected."""
  import glob  # pylint: disable=g-import-not-at-top
  import cv2  # pylint: disable=g-import-not-at-top
  board = np.zeros((corners[0] * corners[1], 3))
  board[:, :2] = np.mgrid[0:corners[0], 0:corners[1]].T.reshape(-1, 2) * square
  errors = []
  for cam in calibration.cameras:
    for path in sorted(glob.glob(str(folder / 'calibration' / 'intrinsics' / f'int_{cam.name}_img'
                                     / '*.jpg'))):
      image = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
      found, pixels = cv2.findChessboardCorners(image, corners)
      if not found:
        continue
      pixels = cv2.cornerSubPix(image, pixels, (5, 5), (-1, -1), (
          cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 50, 1e-3)).reshape(-1, 2)
      _, rvec, tvec = cv2.solvePnP(board, pixels, cam.K, cam.dist)
      projected, _ = cv2.projectPoints(board, rvec, tvec, cam.K, cam.dist)
      errors.append(np.linalg.norm(projected.reshape(-1, 2) - pixels, axis=1))
  e = np.concatenate(errors)
  return len(errors), float(np.sqrt(np.mean(e ** 2))), float(np.median(e))


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  import opensim  # pylint: disable=g-import-not-at-top
  opensim.Logger.setLevelString('error')
  from banet_jax import data, evaluation  # pylint: disable=g-import-not-at-top
  # pylint: disable=g-import-not-at-top
  from banet_jax.capture import calibration, demo, persons, pipeline, placement
  from banet_jax.capture import predict as capture_predict
  from banet_jax.inference import Predictor  # pylint: disable=g-import-not-at-top
  from benchmarks import _common  # pylint: disable=g-import-not-at-top

  folder = demo.demo_capture_dir('Demo_SinglePerson')
  videos = [str(folder / 'videos' / f'cam0{i}.mp4') for i in range(1, 5)]
  calib_path = folder / 'calibration' / 'Calib.qca.txt'
  predictor = Predictor.restore(_CHECKPOINT.value)
  skel = predictor.layout.skeleton
  out_dir = pathlib.Path(_OUT_DIR.value)
  num_frames = _NUM_FRAMES.value or None
  pose = persons.BlazePose()
  print(_common.platform_info())
  print(f'capture: {folder}\ncheckpoint: {_CHECKPOINT.value} (step {predictor.step}, stage '
        f'{predictor.stage}, {predictor.net.config.image_size}-px crops)\n')

  # 2 + 3: both pairs, all four cameras for placement and reprojection.
  calib = calibration.load_calibration(calib_path)
  runs = {}
  for pair in _PAIRS.value:
    cams = tuple(pair.split('+'))
    capture = pipeline.open_capture(videos, calib, cams, num_frames=num_frames, pose=pose,
                                    progress=False)
    report = capture_predict.predict_capture(predictor, capture, out_dir / pair.replace('+', '_'),
                                             name=pair.replace('+', '_'))
    pred = np.load(out_dir / pair.replace('+', '_') / 'predictions.npz')
    runs[pair] = (capture, report, pred['coordinates'], pred['scales'])
    print(f'{pair}: person {report["person"]["track_per_camera"]}, placement residual '
          f'{report["placement"]["median_residual_m"] * 100:.1f} cm, held frames '
          f'{ {k: len(v) for k, v in report["held_frames"].items()} }')

  # 1: distortion convention, from the landmarks of the first run (distorted pixels).
  capture = runs[_PAIRS.value[0]][0]
  rows = []
  c0 = calibration.load_calibration(calib_path)
  no_dist = calibration.Calibration(
      cameras=tuple(type(c)(c.name, c.size, c.K, np.zeros(5), c.R, c.t) for c in c0.cameras),
      source=c0.source, format=c0.format, floor_known=c0.floor_known, notes=c0.notes)
  variants = [('distortion as written', c0),
              ('distortion / 64 (Pose2Sim)', calibration.load_calibration(
                  calib_path, qualisys_distortion_scale=64.0)),
              ('no distortion', no_dist)]
  for label, variant in variants:
    images, rms, median = checkerboard_reprojection_px(folder, variant)
    landmarks = landmark_reprojection_px(capture.landmarks, capture.visibility, variant)
    rows.append((label, f'{landmarks:.2f}', f'{rms:.3f} / {median:.3f} ({images} images)'))
  print('\n## 1. Qualisys distortion: BlazePose landmarks of 4 cameras, triangulated; the '
        'intrinsics checkerboards posed by solvePnP\n')
  print(_table(['calibration', 'landmarks: median reprojection (px)',
                'checkerboard corners: RMS / median (px)'], rows))

  # 2. cross-pair consistency.
  names = [n for i, n in enumerate(skel.coordinate_names)
           if skel.rotational[i] and i not in placement.global_translation_indices(skel)]
  idx = [skel.coordinate_names.index(n) for n in names]
  (_, _, qa, _), (_, _, qb, _) = runs[_PAIRS.value[0]], runs[_PAIRS.value[1]]
  diff = np.degrees(np.abs(np.angle(np.exp(1j * (qa[:, idx] - qb[:, idx])))))
  pair_mae = diff.mean(axis=0)
  print(f'\n## 2. Cross-pair consistency: {_PAIRS.value[0]} vs {_PAIRS.value[1]}, '
        f'{len(qa)} frames\n')
  print(_table(['coordinate', 'mean |difference| (deg)'],
               [(n, f'{v:.1f}') for n, v in zip(names, pair_mae)]
               + [('**all**', f'{pair_mae.mean():.1f}')]))

  # 3. reprojection against BlazePose, next to the mean pose.
  config = predictor.train_config
  try:
    train = data.open_source(_BASELINE_DATASET.value or config.dataset, 'train', config.data_dir,
                             layout=predictor.layout, synthetic_clips=config.synthetic_clips,
                             synthetic_frames=config.synthetic_frames,
                             synthetic_crop_size=config.synthetic_crop_size)
    q = np.concatenate([np.asarray(train[i]['coordinates']) for i in range(len(train))])
    s = np.stack([np.asarray(train[i]['scales']) for i in range(len(train))])
    mean_q, mean_s = evaluation.mean_pose(predictor.layout, q, s)
    baseline_source = f'{config.dataset} train ({len(q)} frames)'
  except Exception as e:  # pylint: disable=broad-except
    mean_q, mean_s = np.zeros(skel.num_coordinates), np.ones((skel.num_bodies, 3))
    baseline_source = f'default pose (training data unavailable: {e})'
  rows = []
  for pair, (capture, report, coords, scales) in runs.items():
    points, _ = capture.triangulate()
    base = np.broadcast_to(mean_q, coords.shape).copy()
    pelvis = [skel.coordinate_index(n)
              for n in ('pelvis_tilt', 'pelvis_list', 'pelvis_rotation')]
    base[:, pelvis] = coords[:, pelvis]
    translation, _ = placement.pelvis_translation(skel, base, mean_s, points)
    base = placement.place(skel, base, translation)
    seen = (capture.landmarks, capture.visibility, capture.calibration)
    rows.append((pair, f'{placement.joint_reprojection(skel, coords, scales, *seen):.3f}',
                 f'{placement.joint_reprojection(skel, base, mean_s, *seen):.3f}'))
  print(f'\n## 3. Joint centres vs BlazePose in all 4 cameras (median error / person height)\n'
        f'baseline: {baseline_source}\n')
  print(_table(['network cameras', 'BANet', 'mean pose'], rows))

  # 4. timings of a two-view run.
  pair = tuple(_PAIRS.value[0].split('+'))
  two = [v for v in videos if pathlib.Path(v).stem in pair]
  capture = pipeline.open_capture(two, calib, pair, num_frames=num_frames, pose=pose,
                                  progress=False)
  t0 = time.perf_counter()
  report = capture_predict.predict_capture(predictor, capture, out_dir / 'two_view_timing',
                                           name='two_view')
  total = time.perf_counter() - t0
  per = report['timings_s']['per_frame']
  front = sum(per.get(k, 0.0) for k in ('decode', 'masks', 'crops'))
  print(f'\n## 4. Seconds per two-view frame ({capture.num_frames} frames, {" + ".join(pair)} '
        'only)\n')
  print(_table(['stage', 's / frame'], [(k, f'{v:.3f}') for k, v in per.items()]
               + [('decode + masks + crops', f'{front:.3f}'),
                  ('wall, whole command', f'{total / capture.num_frames:.3f}')]))
  (out_dir / 'benchmark.json').write_text(json.dumps(
      {'cross_pair_deg': dict(zip(names, pair_mae.tolist())), 'reprojection': rows,
       'timings_per_frame': per}, indent=1, default=str))


if __name__ == '__main__':
  sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
  app.run(main)

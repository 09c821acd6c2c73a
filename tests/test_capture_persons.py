"""BlazePose landmarks, masks, tracking and cross-camera person selection (capture.persons).

Real-frame tests use the mediapipe 0.10.21 models (fetched with pip into the cache) and the
Pose2Sim 0.10.49 demo capture (`capture.demo`); they skip, saying why, only when the package
registry cannot be reached.
"""

from __future__ import annotations

import hashlib
import math
import shutil

import cv2
import numpy as np
import pytest

from banet_jax import geometry
from banet_jax.capture import persons as P
from banet_jax.geometry import look_at


@pytest.fixture(scope='session')
def model_paths():
  try:
    return P.blazepose_models()
  except P.ModelFetchError as e:
    pytest.skip(f'BlazePose models unavailable (package registry unreachable?): {e}')


@pytest.fixture(scope='session')
def pose(model_paths):
  return P.BlazePose(model_paths, num_threads=2)


def _demo(name):
  from banet_jax.capture import demo  # pylint: disable=g-import-not-at-top
  try:
    return demo.demo_capture_dir(name)
  except demo.DemoFetchError as e:
    pytest.skip(f'Pose2Sim demo unavailable (package registry unreachable?): {e}')


def _frames(path, count, start=0):
  """`count` frames (H, W, 3) uint8 RGB of a video from frame `start`."""
  cap = cv2.VideoCapture(str(path))
  try:
    if start:
      cap.set(cv2.CAP_PROP_POS_FRAMES, start)
    frames = []
    for _ in range(count):
      ok, bgr = cap.read()
      assert ok, f'could not decode frame {start + len(frames)} of {path}'
      frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    return frames
  finally:
    cap.release()


# ------------------------------------------------------------------------------ models


def test_models_fetched_and_checksummed(model_paths):
  assert set(model_paths) == {'detector', 'landmarks'}
  for key, path in model_paths.items():
    assert hashlib.sha256(path.read_bytes()).hexdigest() == P.MODEL_FILES[key][1]


def test_model_dir_override_is_checked(model_paths, tmp_path, monkeypatch):
  for path in model_paths.values():
    shutil.copy(path, tmp_path / path.name)
  monkeypatch.setenv(P.MODELS_ENV, str(tmp_path))
  assert P.blazepose_models()['landmarks'] == tmp_path / 'pose_landmark_full.tflite'
  with open(tmp_path / 'pose_detection.tflite', 'r+b') as f:
    f.write(b'\0')
  with pytest.raises(P.ModelFetchError, match='SHA256'):
    P.blazepose_models()
  (tmp_path / 'pose_detection.tflite').unlink()
  with pytest.raises(P.ModelFetchError, match='lacks'):
    P.blazepose_models()


def test_unreachable_registry_says_what_to_do(tmp_path, monkeypatch):
  monkeypatch.delenv(P.MODELS_ENV, raising=False)
  monkeypatch.setenv('PIP_INDEX_URL', 'http://127.0.0.1:9/simple')
  monkeypatch.setenv('PIP_NO_INDEX', '0')
  monkeypatch.setenv('PIP_FIND_LINKS', '')
  monkeypatch.setenv('PIP_RETRIES', '0')
  monkeypatch.setenv('PIP_TIMEOUT', '2')
  with pytest.raises(P.ModelFetchError, match='by hand'):
    P.blazepose_models(tmp_path / 'cache')
  assert not list((tmp_path / 'cache').glob('*.tflite'))


# ------------------------------------------------------------------------ ROI geometry


def test_anchors():
  anchors = P.ssd_anchors()
  assert anchors.shape == (2254, 2)
  np.testing.assert_allclose(anchors[0], [0.5 / 28, 0.5 / 28])
  np.testing.assert_allclose(anchors[-1], [6.5 / 7, 6.5 / 7])


def test_roi_maps_a_known_pixel_through_a_rotated_crop():
  # Alignment points as the detector gives them: mid hip at (500, 400), the size/rotation
  # point 200 px to its right (a person lying with the head to the right).
  roi = P.roi_from_alignment_points([500.0, 400.0], [700.0, 400.0])
  assert roi.rotation == pytest.approx(math.pi / 2)
  assert roi.size == pytest.approx(2 * 200 * 1.25)
  n = P.LANDMARK_SIZE
  # The crop is upright: the head-side point is straight above the crop centre, at
  # 128 - 200 px * 256 / 500 px = 25.6; a point 100 px below the hip is to its right.
  full = np.array([[700.0, 400.0], [500.0, 500.0], [500.0, 400.0]])
  tensor = np.array([[128.0, 25.6], [179.2, 128.0], [128.0, 128.0]])
  np.testing.assert_allclose(roi.to_tensor(full, n), tensor, atol=1e-9)
  np.testing.assert_allclose(roi.to_image(tensor, n), full, atol=1e-9)
  # The resampling agrees: a bright dot at full-image (610, 470) lands where to_tensor says.
  image = np.zeros((800, 1000, 3), np.uint8)
  image[468:473, 608:613] = 255
  crop = roi.crop(image, n)[..., 0].astype(np.float64)
  ys, xs = np.mgrid[:n, :n]
  found = np.array([(crop * xs).sum(), (crop * ys).sum()]) / crop.sum()
  np.testing.assert_allclose(found, roi.to_tensor([610.0, 470.0], n), atol=0.3)
  # A mask painted in the crop goes back where it came from.
  obs = P.PoseObservation(
      landmarks=np.zeros((33, 2)), visibility=np.zeros(33), presence=1.0, roi=roi,
      auxiliary=np.zeros((2, 2)), roi_mask=(crop > 0).astype(np.float32),
      image_shape=(800, 1000))
  ys, xs = np.nonzero(P.person_mask(obs, 0.5))
  np.testing.assert_allclose([xs.mean(), ys.mean()], [610, 470], atol=1.0)


def test_heatmap_refinement_moves_to_the_peak():
  heatmap = np.full((64, 64, 2), -40.0)
  heatmap[30, 20, 0] = 40.0  # a sharp peak for point 0 at cell (col 20, row 30)
  points = np.array([[21.5 / 64, 31.2 / 64], [0.5, 0.5]])  # point 1: flat, low confidence
  out = P.refine_from_heatmap(points, heatmap)
  np.testing.assert_allclose(out[0], [20 / 64, 30 / 64], atol=1e-6)
  np.testing.assert_allclose(out[1], points[1])


# ------------------------------------------------------------------------- real frames


def test_single_person_frame(pose):
  image = _frames(_demo('Demo_SinglePerson') / 'videos/cam04.mp4', 1)[0]
  assert image.shape[2] == 3 and image.shape[0] == 1920
  rois = pose.detect(image)
  assert len(rois) == 1, [r.center for r in rois]
  obs = pose.landmarks(image, rois[0])
  assert obs.presence > 0.9
  assert obs.landmarks.shape == (33, 2) and obs.visibility.shape == (33,)
  mask = obs.mask
  assert mask.shape == image.shape[:2] and mask.dtype == np.float32
  assert 0.0 <= mask.min() and mask.max() <= 1.0
  body = P.person_mask(obs)
  ys, xs = np.nonzero(body)
  assert ys.max() - ys.min() > 500  # person height in pixels
  assert 20_000 < body.sum() < 0.3 * body.size
  # Landmarks lie in the mask (a few pixels' slack for the outline; visible ones).
  grown = cv2.dilate(body.astype(np.uint8), np.ones((15, 15), np.uint8)) > 0
  px = np.round(obs.landmarks).astype(int)
  inside = grown[px[:, 1].clip(0, 1919), px[:, 0].clip(0, image.shape[1] - 1)]
  visible = obs.visibility > 0.5
  assert inside[visible].mean() > 0.9, [n for n, i, v in zip(P.LANDMARK_NAMES, inside, visible)
                                         if v and not i]
  # Arms out: the wrists are much farther apart than the shoulders.
  names = {n: i for i, n in enumerate(P.LANDMARK_NAMES)}
  wrists = np.linalg.norm(obs.landmarks[names['left_wrist']] - obs.landmarks[names['right_wrist']])
  shoulders = np.linalg.norm(obs.landmarks[names['left_shoulder']]
                             - obs.landmarks[names['right_shoulder']])
  assert wrists > 1.5 * shoulders
  # The tracking ROI from the landmarks is close to the detector's.
  roi = pose.roi_from_landmarks(obs)
  assert np.linalg.norm(roi.center - rois[0].center) < 0.1 * rois[0].size
  assert 0.8 < roi.size / rois[0].size < 1.25


def test_tracker_follows_one_person(pose):
  frames = _frames(_demo('Demo_SinglePerson') / 'videos/cam04.mp4', 5)
  tracker = P.PersonTracker(pose, max_people=4)
  steps = [tracker.step(image) for image in frames]
  assert [len(s) for s in steps] == [1] * 5
  assert {s[0].track_id for s in steps} == {0}
  hips = np.array([s[0].landmarks[23:25].mean(0) for s in steps])
  assert np.abs(np.diff(hips, axis=0)).max() < 40  # 60 fps: small moves between frames


# --------------------------------------------------------------------- triangulation


def _synthetic_cameras(num=3, seed=0):
  rng = np.random.default_rng(seed)
  K = np.array([[1000.0, 0.0, 540.0], [0.0, 1000.0, 960.0], [0.0, 0.0, 1.0]])
  cams = []
  for i in range(num):
    angle = 2 * math.pi * i / num + rng.uniform(-0.2, 0.2)
    centre = np.array([4 * math.sin(angle), 1.5 + rng.uniform(-0.3, 0.3), 4 * math.cos(angle)])
    R, t = look_at(centre, np.zeros(3))
    cams.append(geometry.Camera(K, R, t))
  return cams


def test_triangulate_recovers_points():
  cams = _synthetic_cameras(3)
  points = np.random.default_rng(1).uniform(-0.8, 0.8, (5, 4, 3))
  pixels = np.stack([geometry.project(points, *cam) for cam in cams])  # (3, 5, 4, 2)
  np.testing.assert_allclose(P.triangulate(pixels, cams), points, atol=1e-6)
  weights = np.random.default_rng(2).uniform(0.2, 1.0, pixels.shape[:-1])
  np.testing.assert_allclose(P.triangulate(pixels, cams, weights), points, atol=1e-6)
  # Unseen (NaN or weight 0) views drop out; one view is not enough.
  pixels[0, 0] = np.nan
  weights[1, 1] = 0.0
  out = P.triangulate(pixels, cams, weights)
  np.testing.assert_allclose(out, points, atol=1e-6)
  pixels[1, 0, 0] = np.nan
  out = P.triangulate(pixels, cams, weights)
  assert np.isnan(out[0, 0]).all()
  np.testing.assert_allclose(out[1:], points[1:], atol=1e-6)


def test_triangulate_undoes_lens_distortion():
  from banet_jax.capture.calibration import CameraCalibration
  cams = [CameraCalibration(f'c{i}', (1080, 1920), c.K, np.array([-0.05, 0.12, 1e-3, -5e-4, 0.0]),
                            c.R, c.t) for i, c in enumerate(_synthetic_cameras(2))]
  points = np.random.default_rng(3).uniform(-0.8, 0.8, (6, 3))
  pixels = np.stack([
      cv2.projectPoints(points, cv2.Rodrigues(c.R)[0], c.t, c.K, c.dist)[0].reshape(-1, 2)
      for c in cams])
  np.testing.assert_allclose(P.triangulate(pixels, cams), points, atol=1e-6)


# -------------------------------------------------------------------------- selection


@pytest.fixture(scope='module')
def multi_person(pose):
  """Tracks of Demo_MultiPerson cam01..cam03 over 10 frames, and their cameras."""
  from banet_jax.capture.calibration import load_calibration  # pylint: disable=g-import-not-at-top
  folder = _demo('Demo_MultiPerson')
  calibration = load_calibration(folder / 'calibration/Calib.qca.txt')
  names = ['cam01', 'cam02', 'cam03']
  tracks = []
  for name in names:
    tracker = P.PersonTracker(pose, max_people=4)
    steps = [tracker.step(image) for image in _frames(folder / f'videos/{name}.mp4', 10)]
    tracks.append(P.tracks_from_steps(steps)[1])
  return tracks, [calibration.camera(n) for n in names]


def _hips(track):
  return np.array([o.landmarks[23:25].mean(0) if o is not None else [np.nan] * 2 for o in track])


def test_select_person_picks_one_consistent_person(multi_person):
  tracks, cameras = multi_person
  assert all(len(t) >= 2 for t in tracks), [len(t) for t in tracks]  # both people, each camera
  chosen, report = P.select_person(tracks, cameras)
  assert report['rule'] == 'central' and len(report['persons']) == 2
  assert report['error'] < 0.05
  # The same 3-D person: mid hips triangulated from each camera pair agree with those from
  # all cameras within 0.1 m, with each other within 0.2 m (BlazePose's hip points shift by
  # several cm with the viewpoint: pairs measured 0.03-0.15 m apart on this clip).
  hips = np.stack([_hips(tracks[c][k]) for c, k in enumerate(chosen)])  # (3, T, 2)
  every = P.triangulate(hips, cameras)
  pairs = [P.triangulate(hips[[a, b]], [cameras[a], cameras[b]])
           for a, b in ((0, 1), (0, 2), (1, 2))]
  for a, pair in enumerate(pairs):
    assert np.median(np.linalg.norm(pair - every, axis=-1)) < 0.1
    for b in range(a):
      assert np.median(np.linalg.norm(pair - pairs[b], axis=-1)) < 0.2
  assert np.linalg.norm(every.mean(0) - report['position']) < 0.05
  # The other person is elsewhere, and near= selects them.
  other = report['candidates'][report['persons'][1]]
  assert np.linalg.norm(other['position'] - report['position']) > 1.0
  assert all(a != b for a, b in zip(other['tracks'], chosen))
  chosen_near, _ = P.select_person(tracks, cameras, near=other['position'])
  assert tuple(chosen_near) == other['tracks']


def test_select_person_errors(multi_person):
  tracks, cameras = multi_person
  with pytest.raises(P.PersonSelectionError, match=r'camera \d frame \d+: tracks .* equally good'):
    P.select_person(tracks, cameras, prefer=None)
  with pytest.raises(P.PersonSelectionError, match='camera 2: no person candidate'):
    P.select_person([tracks[0], tracks[1], []], cameras)
  # Each camera offered only a different person: nothing is consistent.
  chosen, report = P.select_person(tracks, cameras)
  wrong = report['candidates'][report['persons'][1]]['tracks']
  with pytest.raises(P.PersonSelectionError, match='no track combination is one consistent'):
    P.select_person([[tracks[0][chosen[0]]], [tracks[1][wrong[1]]], [tracks[2][wrong[2]]]],
                    cameras)

"""Crops from distorted frames, triangulation, pelvis placement and floor (banet_jax.capture)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from banet_jax import geometry
from banet_jax import crops
from banet_jax.capture import placement
from banet_jax.skeleton import forward_kinematics, load_osim
from banet_jax.geometry import look_at

K = np.array([[900.0, 0, 500], [0, 905.0, 640], [0, 0, 1]])
DIST = np.array([-0.25, 0.12, 0.001, -0.002, 0.0])  # strong barrel, like a wide lens


def _look_at(centre, target=(0.0, 1.0, 0.0)):
  return look_at(centre, target)


class _Cam:
  def __init__(self, centre):
    self.K, self.dist = K, DIST
    self.R, self.t = _look_at(centre)


def test_distort_pixels_matches_opencv_projection():
  cam = _Cam([3.0, 1.5, 1.0])
  points = np.array([[0.2, 0.1, 0.3], [-0.4, 1.8, 0.2], [0.3, 0.9, -0.5]])
  ideal = geometry.project(points, K, cam.R, cam.t)
  expected, _ = cv2.projectPoints(points, cv2.Rodrigues(cam.R)[0], cam.t, K, DIST)
  np.testing.assert_allclose(crops.distort_pixels(K, DIST, ideal), expected[:, 0], atol=1e-6)


def _dot_scene():
  """(camera, world point, frame, mask): a white dot drawn where the real (distorted) lens
  puts the point, inside a person-sized mask box."""
  cam = _Cam([3.0, 1.2, 2.0])
  point = np.array([0.35, 1.5, -0.2])
  distorted, _ = cv2.projectPoints(point[None], cv2.Rodrigues(cam.R)[0], cam.t, K, DIST)
  u, v = distorted[0, 0]
  frame = np.zeros((1280, 1000, 3), np.uint8)
  cv2.circle(frame, (round(u), round(v)), 6, (255, 255, 255), -1)
  mask = np.zeros((1280, 1000), bool)
  mask[200:1100, 250:700] = True  # a person-sized box around the dot
  return cam, point, frame, mask


def _dot_centre(crop) -> np.ndarray:
  """(x, y) crop pixel of the dot: the brightness-weighted centroid."""
  weights = crop[..., 0].astype(float)
  ys, xs = np.mgrid[:crop.shape[0], :crop.shape[1]]
  return np.array([(weights * xs).sum(), (weights * ys).sum()]) / weights.sum()


def test_known_world_point_lands_on_its_crop_pixel_through_the_lens():
  """A dot drawn where the real (distorted) lens puts a world point appears in the crop at
  the pinhole projection mapped by the crop meta, as BANet's geometry assumes."""
  cam, point, frame, mask = _dot_scene()
  crop, crop_mask, meta = crops.undistorted_square_crop(frame, mask, K, DIST, 128)
  expected = geometry.full_to_crop(geometry.project(point, K, cam.R, cam.t), meta)
  np.testing.assert_allclose(_dot_centre(crop), expected, atol=0.35)  # crop px (scale ~7.7 px)
  assert crop_mask.any() and meta[2] > 1
  # Without distortion it is the plain square crop of odah_tfds.
  from banet_jax.crops import square_crop
  yy, xx = np.mgrid[:300, :200]
  image = np.stack([127 + 120 * np.sin(xx / 17.0), 127 + 120 * np.cos(yy / 23.0),
                    (xx + yy) * 0.5], axis=-1).astype(np.uint8)  # smooth: no aliasing
  m = np.zeros((300, 200), bool)
  m[40:260, 60:140] = True
  a = crops.undistorted_square_crop(image, m, K, np.zeros(5), 64)
  b = square_crop(image, m, 64)
  np.testing.assert_array_equal(a[2], b[2])
  np.testing.assert_array_equal(a[1], b[1])
  assert np.abs(a[0].astype(int) - b[0].astype(int)).mean() < 1.5


def _rotation(axis, deg):
  return cv2.Rodrigues(np.radians(deg) * np.asarray(axis, np.float64))[0]


def test_a_turned_camera_sees_a_known_world_point_on_its_crop_pixel():
  """The front end's aimed cameras: the crop is cut from a virtual camera turned about the
  real one's centre (rolled 25 deg and pitched 8, like a camera rolled on its mount). A dot
  drawn where the real, distorted lens puts a world point appears at the turned pinhole
  camera's projection mapped by the crop meta, and the square is centred on the mask's
  box in the turned image."""
  cam, point, frame, mask = _dot_scene()
  turn = _rotation([0, 0, 1], 25.0) @ _rotation([1, 0, 0], 8.0)
  crop, crop_mask, meta = crops.undistorted_square_crop(frame, mask, K, DIST, 128, rotation=turn)
  expected = geometry.full_to_crop(geometry.project(point, K, turn @ cam.R, turn @ cam.t), meta)
  np.testing.assert_allclose(_dot_centre(crop), expected, atol=0.35)
  # The (turned) mask box is centred in the square and fills 1 / 1.1 of it.
  rows, cols = np.flatnonzero(crop_mask.any(1)), np.flatnonzero(crop_mask.any(0))
  box = max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1
  assert abs(box - 128 / 1.1) <= 2
  assert abs((rows[0] + rows[-1]) / 2 - 63.5) <= 1.5 or abs((cols[0] + cols[-1]) / 2 - 63.5) <= 1.5
  # Turning there and back is the identity; no turn is the camera as it is.
  pixels = np.random.default_rng(0).uniform(0, 1000, (20, 2))
  there = crops.turn_pixels(K, turn, pixels)
  np.testing.assert_allclose(crops.turn_pixels(K, turn.T, there), pixels, atol=1e-8)
  same = crops.undistorted_square_crop(frame, mask, K, DIST, 128, rotation=np.eye(3))
  plain = crops.undistorted_square_crop(frame, mask, K, DIST, 128)
  for a, b in zip(same, plain):
    np.testing.assert_array_equal(a, b)
  # A ray behind the turned camera maps to nan (and samples nothing).
  assert np.isnan(crops.turn_pixels(K, _rotation([0, 1, 0], 120.0), K[:2, 2][None])).all()


def test_look_at_aims_a_level_camera():
  """geometry.look_at: the target on the optical axis (at the principal point), image x
  horizontal, image y pointing down, a proper rotation; impossible aims are refused."""
  R, t = geometry.look_at([2.0, 2.5, -1.0], [0.3, 0.9, 0.4])
  np.testing.assert_allclose(geometry.project(np.array([0.3, 0.9, 0.4]), K, R, t), K[:2, 2])
  np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
  assert np.isclose(np.linalg.det(R), 1.0) and abs(R[0, 1]) < 1e-12 and R[1, 1] < 0
  with pytest.raises(ValueError, match='coincides'):
    geometry.look_at([1.0, 1.0, 1.0], [1.0, 1.0, 1.0])
  with pytest.raises(ValueError, match='vertical'):
    geometry.look_at([0.0, 3.0, 0.0], [0.0, 1.0, 0.0])


def test_empty_mask_is_refused():
  from banet_jax.crops import EmptyMaskError
  with pytest.raises(EmptyMaskError):
    crops.undistorted_square_crop(np.zeros((50, 40, 3), np.uint8), np.zeros((50, 40), bool), K,
                                  DIST, 32)


def test_triangulation_through_the_lens_recovers_points_and_rejects_an_outlier_camera():
  from banet_jax.capture.calibration import CameraCalibration
  cams = [CameraCalibration(f'c{i}', (1000, 1280), K, DIST, *_look_at(c)) for i, c in
          enumerate(([3, 1.8, 0], [0, 2.0, 3.5], [-3, 1.7, 0.5], [0.5, 1.9, -3.2]))]
  rng = np.random.default_rng(1)
  truth = rng.uniform(-0.5, 0.5, (5, 33, 3)) + np.array([0, 1.0, 0])
  pixels = np.stack([c.project(truth) for c in cams])  # distorted, as the cameras see them
  vis = np.ones(pixels.shape[:3])
  points, used = placement.triangulate_landmarks(pixels, vis, cams)
  np.testing.assert_allclose(points, truth, atol=1e-6)
  assert np.all(used == 4)
  # Ignoring the lens misses by millimetres here (points near the image centres).
  flat = [CameraCalibration(c.name, c.size, c.K, np.zeros(5), c.R, c.t) for c in cams]
  assert np.nanmax(np.abs(placement.triangulate_landmarks(pixels, vis, flat,
                                                          max_reprojection_px=1e9)[0]
                          - truth)) > 0.003
  pixels[2, :, 0] += 80.0  # one camera mislabels landmark 0
  vis[1, :, 1] = 0.1       # one camera does not see landmark 1
  points, used = placement.triangulate_landmarks(pixels, vis, cams)
  np.testing.assert_allclose(points[:, 0], truth[:, 0], atol=1e-6)
  assert np.all(used[:, 0] == 3) and np.all(used[:, 1] == 3)


def test_pelvis_translation_recovers_the_true_placement(project_model_path):
  skel = load_osim(str(project_model_path))
  rng = np.random.default_rng(2)
  t = 6
  coords = np.zeros((t, skel.num_coordinates))
  coords[:, skel.coordinate_index('knee_angle_r')] = rng.uniform(-1.2, 0, t)
  coords[:, skel.coordinate_index('hip_flexion_l')] = rng.uniform(-0.3, 0.8, t)
  coords[:, skel.coordinate_index('pelvis_rotation')] = rng.uniform(-3, 3, t)
  scales = np.full((skel.num_bodies, 3), 1.05)
  truth = rng.uniform(-2, 2, (t, 3)) + np.array([0, 0.95, 0])
  placed = placement.place(skel, coords, truth)
  # The ground joint's translations move every point by the same vector.
  fk0 = np.asarray(forward_kinematics(skel, coords, np.broadcast_to(scales, (t,) + scales.shape))
                   .joint_centers)
  fk1 = np.asarray(forward_kinematics(skel, placed, np.broadcast_to(scales, (t,) + scales.shape))
                   .joint_centers)
  np.testing.assert_allclose(fk1 - fk0, np.broadcast_to(truth[:, None], fk0.shape), atol=1e-5)
  # Landmarks at the true joint centres (+ 1 cm noise), one frame with none.
  joints, marks = placement.matched_joints(skel)
  points = np.full((t, 33, 3), np.nan)
  points[:, marks] = fk1[:, joints] + rng.normal(0, 0.01, (t, len(marks), 3))
  points[3] = np.nan
  translation, residual = placement.pelvis_translation(skel, coords, scales, points)
  err = np.linalg.norm(translation - truth, axis=1)
  assert np.all(err[[0, 1, 2, 4, 5]] < 0.01)
  assert np.isnan(residual[3]) and np.allclose(translation[3], translation[2]) or \
      np.allclose(translation[3], translation[4])
  points[:] = np.nan
  with pytest.raises(ValueError, match='no frame has enough'):
    placement.pelvis_translation(skel, coords, scales, points)


def test_floor_from_the_feet():
  points = np.full((50, 33, 3), np.nan)
  points[:, list(placement.FOOT_LANDMARKS), 1] = 0.31 + np.linspace(0, 0.2, 50)[:, None]
  assert placement.estimate_floor(points) == pytest.approx(0.31 + 0.2 * 0.02, abs=0.005)
  with pytest.raises(ValueError, match='foot'):
    placement.estimate_floor(np.full((3, 33, 3), np.nan))


def _body_landmarks(rng, frames):
  """(T, 33, 3) a standing person's BlazePose landmarks (left at +x before turning about
  the vertical by a random angle per frame), metres."""
  heights = {0: 1.62, 7: 1.6, 9: 1.55, 11: 1.42, 13: 1.12, 15: 0.86, 17: 0.78, 19: 0.77,
             21: 0.8, 23: 0.92, 25: 0.5, 27: 0.1, 29: 0.05, 31: 0.04}
  widths = {0: 0.0, 7: 0.08, 9: 0.03, 11: 0.19, 13: 0.24, 15: 0.27, 17: 0.3, 19: 0.29,
            21: 0.26, 23: 0.12, 25: 0.13, 27: 0.14, 29: 0.14, 31: 0.15}
  base = np.zeros((33, 3))
  for left, right in placement.LEFT_RIGHT_PAIRS:
    key = max(k for k in heights if k <= left) if left >= 7 else 0
    forward = 0.12 if left in (1, 2, 3, 31) else (-0.05 if left == 29 else 0.0)
    base[left] = (widths[key] + 0.01 * (left - key), heights[key], forward)
    base[right] = (-base[left][0], base[left][1], forward)
  base[0] = (0.0, 1.62, 0.1)
  angles = rng.uniform(-0.6, 0.6, frames)
  rot = np.stack([[[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]]
                  for a in angles])
  return np.einsum('tij,lj->tli', rot, base) + rng.normal(0, 0.005, (frames, 33, 3))


def test_left_right_exchange_in_one_camera_is_found_and_undone():
  from banet_jax.capture.calibration import CameraCalibration
  cams = [CameraCalibration(f'c{i}', (1000, 1280), K, DIST, *_look_at(c)) for i, c in
          enumerate(([0.3, 1.8, 3.5], [3.2, 1.7, 1.0], [-3.0, 1.9, 1.5], [1.0, 2.0, -3.3]))]
  rng = np.random.default_rng(3)
  truth = _body_landmarks(rng, 8)
  pixels = np.stack([c.project(truth) for c in cams])
  vis = np.ones(pixels.shape[:3])
  vis[0, :, 0] = 0.3  # a low-visibility observation changes nothing
  expected = np.zeros((4, 8, 2), bool)
  expected[1, [2, 3], 0] = True   # camera 1's arms exchanged in frames 2, 3
  expected[2, 4, 1] = True        # camera 2's legs in frame 4
  expected[3, 5, :] = True        # camera 3's whole body in frame 5
  given, given_vis = placement.exchange_sides(pixels, vis, expected)
  assert not np.array_equal(given, pixels)
  found = placement.left_right_swaps(given, given_vis, cams)
  np.testing.assert_array_equal(found, expected)
  fixed, fixed_vis = placement.exchange_sides(given, given_vis, found)
  np.testing.assert_array_equal(fixed, pixels)
  np.testing.assert_array_equal(fixed_vis, vis)
  assert not placement.left_right_swaps(pixels, vis, cams).any()  # nothing on clean data
  # Two cameras cannot outvote each other.
  assert not placement.left_right_swaps(given[:2], given_vis[:2], cams[:2]).any()


def test_heading_of_a_body_turned_about_the_vertical(project_model_path):
  """Landmarks at the project model's hips and shoulders, turned by pelvis_rotation = a,
  give heading a (the direction ODAH subjects face is 0); unknown frames are nan."""
  skel = load_osim(str(project_model_path))
  angles = np.array([0.0, 0.7, -1.9, 3.0, np.pi / 2])
  coords = np.zeros((len(angles), skel.num_coordinates))
  coords[:, skel.coordinate_index('pelvis_rotation')] = angles
  coords[:, skel.coordinate_index('hip_flexion_l')] = 0.4  # a pose, not a T
  centres = np.asarray(forward_kinematics(skel, coords).joint_centers, np.float64)
  points = np.full((len(angles) + 1, 33, 3), np.nan)
  for joint, landmark in (('hip_l', 23), ('hip_r', 24), ('acromial_l', 11), ('acromial_r', 12)):
    points[:-1, landmark] = centres[:, skel.joint_index(joint)]
  heading = placement.body_heading(points)
  np.testing.assert_allclose(np.angle(np.exp(1j * (heading[:-1] - angles))), 0, atol=1e-5)
  assert np.isnan(heading[-1])
  assert placement.mean_heading([0.1, np.nan, -0.1, 2 * np.pi]) == pytest.approx(0, abs=1e-9)
  assert placement.mean_heading([np.pi - 0.1, -np.pi + 0.1]) == pytest.approx(np.pi, abs=1e-9) or \
      placement.mean_heading([np.pi - 0.1, -np.pi + 0.1]) == pytest.approx(-np.pi, abs=1e-9)
  assert placement.mean_heading([np.nan]) == 0.0


def test_turning_the_body_about_the_vertical_keeps_the_pose(project_model_path):
  """turn_about_vertical rotates every body by the turn about the pelvis origin and keeps
  every coordinate but the root's three rotations."""
  skel = load_osim(str(project_model_path))
  rng = np.random.default_rng(5)
  coords = rng.normal(0, 0.35, (6, skel.num_coordinates))
  angle = 2.2
  turned = placement.turn_about_vertical(skel, coords, angle)
  root = next(j for j in skel.joints if j.parent_body == -1)
  rotations = [m.coordinate for m in root.rotations]
  others = np.setdiff1d(np.arange(skel.num_coordinates), rotations)
  np.testing.assert_array_equal(turned[:, others], coords[:, others])
  before, after = forward_kinematics(skel, coords), forward_kinematics(skel, turned)
  turn = placement.vertical_rotation(angle)
  np.testing.assert_allclose(np.asarray(after.body_rotations),
                             np.einsum('ij,tbjk->tbik', turn, np.asarray(before.body_rotations)),
                             atol=1e-5)
  pelvis0 = np.asarray(before.body_positions)[:, root.child_body, None]
  pelvis1 = np.asarray(after.body_positions)[:, root.child_body, None]
  np.testing.assert_allclose(np.asarray(after.joint_centers) - pelvis1,
                             np.einsum('ij,tpj->tpi', turn,
                                       np.asarray(before.joint_centers) - pelvis0), atol=1e-5)
  np.testing.assert_allclose(placement.turn_about_vertical(skel, turned, -angle), coords,
                             atol=1e-9)
  assert placement.vertical_rotation(0.3) @ np.array([1.0, 0, 0]) == pytest.approx(
      [np.cos(0.3), 0, -np.sin(0.3)])


def test_a_turned_clip_frame_keeps_every_pixel():
  """The capture's clip frame (origin moved, turned about the vertical): a world point and
  its clip-frame coordinates land on the same pixel through the calibration camera and the
  clip camera (pipeline.Capture._clip's R' = R turn, t' = t + R origin)."""
  cam = _Cam([3.0, 1.6, 2.5])
  origin, angle = np.array([0.4, 0.0, -1.1]), 1.1
  turn = placement.vertical_rotation(angle)
  world = np.array([[0.5, 1.0, -1.0], [0.1, 0.2, -0.8], [0.9, 1.7, -1.3]])
  clip_points = (world - origin) @ turn  # X' = turn^T (X - origin)
  expected = geometry.project(world, K, cam.R, cam.t)
  got = geometry.project(clip_points, K, cam.R @ turn, cam.t + cam.R @ origin)
  np.testing.assert_allclose(got, expected, atol=1e-9)

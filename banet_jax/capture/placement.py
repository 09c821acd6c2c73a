"""Where the body stands: pelvis translation and floor from calibrated 2-D landmarks.

BANet predicts every coordinate except the pelvis translations (`pelvis_tx/ty/tz`, the
translational coordinates of the joint to ground; `model.outputs.OutputLayout`). A real
capture needs them for the `.mot` to put the body where it stands in the lab. Here they
come from the BlazePose landmarks of all calibrated cameras:

1. `triangulate_landmarks`: each landmark seen by two or more cameras with visibility at
   least `min_visibility` is triangulated (visibility-weighted linear DLT,
   `persons.triangulate`), then the camera with the largest reprojection error is dropped
   while it exceeds `max_reprojection_px` and three or more cameras remain; a point still
   above it is dropped.
2. `pelvis_translation`: the predicted pose with zero translation is moved, frame by
   frame, by the median over matched points of (triangulated landmark - model joint
   centre). Matched points are the hips, knees, ankles, shoulders, elbows and wrists
   (`JOINT_LANDMARKS`); joints the model lacks are skipped. The ground-to-pelvis
   translation axes of OpenSim models are the ground's x, y, z, so a translation moves
   every model point by the same vector (checked in the tests). Frames with no matched
   point take the nearest frame's value.
3. `estimate_floor`: where the calibration has no floor (a checkerboard world), the
   floor height is the 2nd percentile, over frames, of the lowest heel / toe landmark.

Everything is in the project world (OpenSim ground: metres, y up). Shapes: C cameras,
T frames, L = 33 BlazePose landmarks (`persons.LANDMARK_NAMES` order).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from banet_jax.skeleton import Skeleton, forward_kinematics

# BlazePose landmark index -> the model joint whose centre it marks (project model names,
# which follow Rajagopal's; any model with these joint names works).
JOINT_LANDMARKS = {
    'hip_l': 23, 'hip_r': 24,
    'walker_knee_l': 25, 'walker_knee_r': 26,
    'ankle_l': 27, 'ankle_r': 28,
    'acromial_l': 11, 'acromial_r': 12,
    'elbow_l': 13, 'elbow_r': 14,
    'radius_hand_l': 15, 'radius_hand_r': 16,
}
# Heels (29, 30) and toe tips (31, 32): the lowest points BlazePose marks.
FOOT_LANDMARKS = (29, 30, 31, 32)


def triangulate_landmarks(landmarks, visibility, cameras: Sequence, *,
                          min_visibility: float = 0.5,
                          max_reprojection_px: float = 25.0) -> tuple[np.ndarray, np.ndarray]:
  """Landmarks of several calibrated cameras -> world points.

  Args:
    landmarks: (C, T, L, 2) pixels as the cameras see them (distorted; `persons.triangulate`
      undoes each camera's lens distortion).
    visibility: (C, T, L) in [0, 1]; 0 where the camera has no observation.
    cameras: C cameras with K, R, t (world -> camera, metres), `dist` and `project`
      (`calibration.CameraCalibration`).
    min_visibility: observations below it are not used.
    max_reprojection_px: outlier rejection threshold (see the module docstring).

  Returns:
    points (T, L, 3) metres (nan where not triangulated) and the number of cameras
    used (T, L) int.
  """
  from banet_jax.capture.persons import triangulate  # pylint: disable=g-import-not-at-top
  landmarks = np.asarray(landmarks, np.float64)
  visibility = np.asarray(visibility, np.float64)
  c = len(cameras)
  if landmarks.shape[:-1] != visibility.shape or landmarks.shape[0] != c:
    raise ValueError(f'landmarks {landmarks.shape}, visibility {visibility.shape} and '
                     f'{c} cameras disagree')
  weights = np.where((visibility >= min_visibility) & np.isfinite(landmarks).all(-1),
                     visibility, 0.0)
  while True:
    points = triangulate(landmarks, cameras, weights)
    errors = np.stack([np.linalg.norm(cam.project(points) - landmarks[k], axis=-1)
                       for k, cam in enumerate(cameras)])
    errors = np.where(weights > 0, np.nan_to_num(errors, nan=np.inf), -1.0)
    used = (weights > 0).sum(axis=0)
    worst = errors.max(axis=0)
    drop = (worst > max_reprojection_px) & (used > 2)
    if not drop.any():
      break
    worst_camera = errors.argmax(axis=0)
    for k in range(c):
      weights[k][drop & (worst_camera == k)] = 0.0
  bad = (worst > max_reprojection_px) | (used < 2)
  points[bad] = np.nan
  return points, np.where(bad, 0, used).astype(np.int32)


def matched_joints(skel: Skeleton) -> tuple[np.ndarray, np.ndarray]:
  """(joint indices into skel.joint_names, landmark indices) of `JOINT_LANDMARKS` the
  model has."""
  pairs = [(skel.joint_names.index(name), lm) for name, lm in JOINT_LANDMARKS.items()
           if name in skel.joint_names]
  if not pairs:
    raise ValueError(f'{skel.source}: none of the joints {sorted(JOINT_LANDMARKS)} exists; '
                     'cannot place the body from landmarks')
  joints, marks = zip(*pairs)
  return np.array(joints), np.array(marks)


def global_translation_indices(skel: Skeleton) -> np.ndarray:
  """(3,) indices of the x, y, z translations of the joint to ground."""
  root = next(j for j in skel.joints if j.parent_body == -1)
  idx = [axis.coordinate for axis in root.translations
         if axis.coordinate >= 0 and skel.translational[axis.coordinate]]
  if len(idx) != 3:
    raise ValueError(f'{skel.source}: the joint to ground has {len(idx)} translational '
                     'coordinates; placement needs x, y and z')
  return np.array(idx)


def pelvis_translation(skel: Skeleton, coordinates, scales, points, *,
                       min_points: int = 2) -> tuple[np.ndarray, np.ndarray]:
  """Per-frame global translation that puts the predicted pose onto triangulated landmarks.

  Args:
    skel: the model the coordinates refer to.
    coordinates: (T, C) predicted coordinates (their global translations are ignored).
    scales: (B, 3) or (T, B, 3) body scale factors.
    points: (T, 33, 3) triangulated BlazePose landmarks (nan where unknown), metres.
    min_points: a frame needs at least this many matched points.

  Returns:
    translation (T, 3) metres to write into the translational coordinates of the joint
    to ground, and the per-frame residual (T,): median distance (m) of the matched points
    after placement (nan where the frame had too few points and was filled).
  """
  coordinates = np.array(coordinates, np.float64)
  coordinates[:, global_translation_indices(skel)] = 0.0
  scales = np.broadcast_to(np.abs(np.asarray(scales, np.float64)),
                           (len(coordinates), skel.num_bodies, 3))
  joints, marks = matched_joints(skel)
  centres = np.asarray(forward_kinematics(skel, coordinates, scales).joint_centers)[:, joints]
  diff = np.asarray(points)[:, marks] - centres  # (T, M, 3)
  ok = np.all(np.isfinite(diff), axis=-1)
  t = len(coordinates)
  translation = np.full((t, 3), np.nan)
  residual = np.full(t, np.nan)
  for f in range(t):
    if ok[f].sum() >= min_points:
      translation[f] = np.median(diff[f, ok[f]], axis=0)
      residual[f] = np.median(np.linalg.norm(diff[f, ok[f]] - translation[f], axis=-1))
  good = np.flatnonzero(np.isfinite(translation[:, 0]))
  if good.size == 0:
    raise ValueError('no frame has enough triangulated landmarks to place the body: check '
                     'that the cameras see the person and that the calibration matches')
  for f in np.flatnonzero(~np.isfinite(translation[:, 0])):
    translation[f] = translation[good[np.argmin(np.abs(good - f))]]
  return translation, residual


def place(skel: Skeleton, coordinates, translation) -> np.ndarray:
  """(T, C) coordinates with the global translations set to `translation` (T, 3)."""
  out = np.array(coordinates, np.float64)
  out[:, global_translation_indices(skel)] = translation
  return out


def estimate_floor(points, percentile: float = 2.0) -> float:
  """Floor height (world y, metres) from the lowest foot landmarks (T, 33, 3) over frames."""
  feet = np.asarray(points)[:, list(FOOT_LANDMARKS), 1]
  lowest = np.nanmin(np.where(np.isfinite(feet), feet, np.inf), axis=1)
  lowest = lowest[np.isfinite(lowest)]
  if lowest.size == 0:
    raise ValueError('no foot landmark was triangulated: cannot estimate the floor; give a '
                     'calibration whose world has the floor (Pose2Sim, Qualisys or the '
                     'project format with floor_known = true)')
  return float(np.percentile(lowest, percentile))


def joint_reprojection(skel: Skeleton, coordinates, scales, landmarks, visibility,
                       calibration) -> float:
  """How well a pose sits on the person: median over cameras, frames and the joints of
  `JOINT_LANDMARKS` of |projected joint centre - BlazePose landmark| / the person's height
  in that image (the landmarks' vertical extent), a fraction.

  coordinates (T, C) placed in the calibration's world; scales (B, 3); landmarks (C, T, 33,
  2) distorted pixels; visibility (C, T, 33) (landmarks below 0.5 are not scored);
  calibration: its cameras project through their lens model.
  """
  names = [j for j in JOINT_LANDMARKS if j in skel.joint_names]
  joints = [skel.joint_names.index(j) for j in names]
  marks = [JOINT_LANDMARKS[j] for j in names]
  scales = np.asarray(scales, np.float64)
  centres = np.asarray(forward_kinematics(
      skel, coordinates, np.broadcast_to(scales, (len(coordinates),) + scales.shape))
                       .joint_centers, np.float64)[:, joints]
  fractions = []
  for c, cam in enumerate(calibration.cameras):
    lm = np.asarray(landmarks[c], np.float64)
    height = np.nanmax(lm[..., 1], axis=1) - np.nanmin(lm[..., 1], axis=1)  # (T,)
    err = np.linalg.norm(cam.project(centres) - lm[:, marks], axis=-1)  # (T, J)
    ok = (np.asarray(visibility[c])[:, marks] >= 0.5) & np.isfinite(err) & (height[:, None] > 0)
    fractions.append((err / height[:, None])[ok])
  return float(np.median(np.concatenate(fractions)))

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

Before any of it, `left_right_swaps` finds frames where one camera's 2-D detector has
labelled the body's left side right and vice versa (BlazePose does this in runs of
frames: on Pose2Sim's demo, cam02 in frames 33-72). With three or more cameras the
others decide: the camera's limb landmarks are compared, as given and with the sides
exchanged, with the reprojection of the points the other cameras triangulate; a
swap is declared when exchanging the sides halves the median error and the error as
given exceeds `SWAP_MIN_ERROR` of the person's height in that image. `pipeline.Capture`
corrects every frame as it is decoded and reports the frames per camera.

Everything is in the project world (OpenSim ground: metres, y up). Shapes: C cameras,
T frames, L = 33 BlazePose landmarks (`persons.LANDMARK_NAMES` order).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from banet_jax.capture.persons import triangulate
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
# BlazePose's (left, right) landmark pairs, in two groups that the detector exchanges
# independently (on the demo, cam02's arms in some frames and its legs too in others):
# the upper body (face, shoulders, arms, hands) and the lower (hips, legs, feet).
LEFT_RIGHT_PAIRS = ((1, 4), (2, 5), (3, 6), (7, 8), (9, 10)) + tuple(
    (k, k + 1) for k in range(11, 33, 2))
SWAP_GROUPS = ('upper', 'lower')
_GROUP_OF_PAIR = tuple(0 if left < 23 else 1 for left, _ in LEFT_RIGHT_PAIRS)


def _side_swapped_order(group: int) -> np.ndarray:
  order = np.arange(33)
  for (left, right), g in zip(LEFT_RIGHT_PAIRS, _GROUP_OF_PAIR):
    if g == group:
      order[[left, right]] = right, left
  return order


# Per group: the landmark order with that group's sides exchanged, and the landmarks that
# decide (shoulders to hands, hips to toes: the face's pairs are a few pixels apart).
SIDE_SWAPPED = tuple(_side_swapped_order(g) for g in range(len(SWAP_GROUPS)))
SWAP_LANDMARKS = (tuple(range(11, 23)), tuple(range(23, 33)))
# A group is exchanged when the median error as given exceeds this fraction of the person's
# height in the image (so that a person seen exactly side-on, whose sides project almost
# alike, is left alone) and exchanging its sides at least halves it. On the demo's 100
# frames: cam02's exchanged arms err by 0.60-0.79 of the height as given and 0.01-0.20
# exchanged, its exchanged legs by 0.20-0.50 and 0.01-0.03; correct groups of every camera
# by at most 0.06 as given (medians 0.01-0.04).
SWAP_MIN_ERROR = 0.1
SWAP_RATIO = 0.5


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


def left_right_swaps(landmarks, visibility, cameras: Sequence, *,
                     min_visibility: float = 0.5, min_error: float = SWAP_MIN_ERROR,
                     ratio: float = SWAP_RATIO) -> np.ndarray:
  """Frames where a camera's detector exchanged the body's left and right.

  Args:
    landmarks: (C, T, L=33, 2) pixels, as `triangulate_landmarks` takes them.
    visibility: (C, T, L) in [0, 1].
    cameras: the C calibrated cameras.
    min_visibility: observations below it are not used.
    min_error: the group's median reprojection error as given must exceed this fraction
      of the person's height in the image (the extent of the camera's landmarks in y).
    ratio: ... and exchanging the group's sides must bring it to at most `ratio` times that.

  Returns:
    (C, T, G) bool, G = len(SWAP_GROUPS) (upper, lower body): True where the camera has
    that group's sides exchanged. All False with fewer than three cameras (two cameras
    cannot outvote each other).
  """
  landmarks = np.asarray(landmarks, np.float64)
  visibility = np.asarray(visibility, np.float64)
  c, t = landmarks.shape[:2]
  swapped = np.zeros((c, t, len(SWAP_GROUPS)), bool)
  if c < 3:
    return swapped
  # One exchange per frame and round, the clearest first: an exchanged camera also pulls
  # the points the others are checked against, so the others are judged again after it
  # is corrected (on the demo, a single round also flagged cam03 and cam04 in three
  # frames where only cam02 was wrong).
  frames = np.arange(t)
  for _ in range(c * len(SWAP_GROUPS)):
    fixed_l, fixed_v = exchange_sides(landmarks, visibility, swapped)
    gain = _exchange_gain(fixed_l, fixed_v, cameras, min_visibility, min_error, ratio)
    best = gain.reshape(t, -1).argmax(axis=1)  # (T,) over (camera, group)
    todo = gain.reshape(t, -1)[frames, best] > 0
    if not todo.any():
      break
    k, g = np.unravel_index(best[todo], (c, len(SWAP_GROUPS)))
    swapped[k, frames[todo], g] ^= True
  return swapped


def _exchange_gain(landmarks, visibility, cameras, min_visibility, min_error, ratio):
  """(T, C, G): given / exchanged median error where a group qualifies for an exchange
  (`left_right_swaps`), else 0."""
  c, t = landmarks.shape[:2]
  gain = np.zeros((t, c, len(SWAP_GROUPS)))
  for k in range(c):
    others = [j for j in range(c) if j != k]
    points, _ = triangulate_landmarks(landmarks[others], visibility[others],
                                      [cameras[j] for j in others],
                                      min_visibility=min_visibility)
    projected = cameras[k].project(points)  # (T, L, 2)
    seen = (visibility[k] >= min_visibility) & np.isfinite(landmarks[k]).all(-1)
    given = np.where(seen[..., None], landmarks[k], np.nan)
    with np.errstate(all='ignore'):
      height = np.nanmax(given[..., 1], axis=1) - np.nanmin(given[..., 1], axis=1)
    for g, (order, decide) in enumerate(zip(SIDE_SWAPPED, SWAP_LANDMARKS)):
      decide = list(decide)
      err_given = np.linalg.norm(projected - given, axis=-1)[:, decide]
      err_exchanged = np.linalg.norm(projected - given[:, order], axis=-1)[:, decide]
      both = np.isfinite(err_given) & np.isfinite(err_exchanged)
      enough = both.sum(axis=1) >= len(decide) // 2
      with np.errstate(all='ignore'):
        med_given = np.nanmedian(np.where(both, err_given, np.nan), axis=1)
        med_exchanged = np.nanmedian(np.where(both, err_exchanged, np.nan), axis=1)
        qualifies = (enough & (med_given > min_error * height)
                     & (med_exchanged <= ratio * med_given))
        gain[:, k, g] = np.where(qualifies, med_given / np.maximum(med_exchanged, 1e-9), 0.0)
  return gain


def exchange_sides(landmarks, visibility, swapped) -> tuple[np.ndarray, np.ndarray]:
  """Landmarks (C, T, L, 2) and visibility (C, T, L) with each group's sides exchanged
  where `swapped` (C, T, G) is True (copies)."""
  landmarks, visibility = np.array(landmarks), np.array(visibility)
  swapped = np.asarray(swapped, bool)
  for g, order in enumerate(SIDE_SWAPPED):
    sel = swapped[..., g]
    landmarks[sel] = landmarks[sel][:, order]
    visibility[sel] = visibility[sel][:, order]
  return landmarks, visibility


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


# BlazePose (left, right) shoulders and hips: the body's left-to-right direction.
SHOULDERS_HIPS = ((11, 12), (23, 24))


def vertical_rotation(angle) -> np.ndarray:
  """(..., 3, 3) rotation by `angle` (rad) about the world's vertical (+y): +x goes to
  (cos a, 0, -sin a), as OpenSim's ground-to-pelvis rotation about y turns the pelvis."""
  c, s = np.cos(angle), np.sin(angle)
  zero, one = np.zeros_like(c), np.ones_like(c)
  return np.stack([np.stack([c, zero, s], -1), np.stack([zero, one, zero], -1),
                   np.stack([-s, zero, c], -1)], -2)


def body_heading(points) -> np.ndarray:
  """(T,) the direction the person faces in each frame (rad; nan where unknown).

  From triangulated landmarks (T, 33, 3) in the project world (y up): the body's
  right-pointing vector (right minus left shoulder plus right minus left hip) on the floor
  plane, turned to its forward direction f = up x right; the heading is the angle a with
  f = (cos a, 0, -sin a), the pelvis_rotation of a person standing upright that way
  (OpenSim pelvis frame: x forward, y up, z right).
  """
  points = np.asarray(points, np.float64)
  right = sum(points[:, r] - points[:, l] for l, r in SHOULDERS_HIPS)  # (T, 3)
  forward_x, forward_z = right[:, 2], -right[:, 0]  # up x right = (r_z, 0, -r_x)
  heading = np.arctan2(-forward_z, forward_x)
  heading[~(np.isfinite(heading) & (np.hypot(forward_x, forward_z) > 1e-6))] = np.nan
  return heading


def mean_heading(headings) -> float:
  """Circular mean (rad) of the finite headings; 0 when there are none."""
  h = np.asarray(headings, np.float64)
  h = h[np.isfinite(h)]
  return float(np.arctan2(np.sin(h).sum(), np.cos(h).sum())) if h.size else 0.0


def turn_about_vertical(skel: Skeleton, coordinates, angle: float) -> np.ndarray:
  """(T, C) coordinates of the same poses with the body turned by `angle` (rad) about the
  world's vertical: the root orientation becomes vertical_rotation(angle) @ its own; every
  other coordinate is kept (the global translations too: placement sets them after).

  The joint to ground must turn the body by three rotations with identity functions about
  axes that are each orthogonal to the next (OpenSim's gait models: tilt z, list x,
  rotation y; a FreeJoint's x, y, z); the new angles are that Davenport decomposition.
  """
  from scipy.spatial.transform import Rotation  # pylint: disable=g-import-not-at-top
  out = np.array(coordinates, np.float64)
  if angle == 0.0:
    return out
  root = next(j for j in skel.joints if j.parent_body == -1)
  axes = np.array([m.axis for m in root.rotations], np.float64)
  index = [m.coordinate for m in root.rotations]
  if (len(axes) != 3 or min(index) < 0 or not all(m.function.is_identity for m in root.rotations)
      or abs(axes[0] @ axes[1]) > 1e-9 or abs(axes[1] @ axes[2]) > 1e-9):
    raise ValueError(f'{skel.source}: the joint to ground ({root.name}) does not turn the body '
                     'by three plain rotations about successively orthogonal axes; the body '
                     'cannot be turned about the vertical here')
  frame = np.asarray(root.parent_rotation, np.float64)  # F in ground
  turn = frame.T @ vertical_rotation(angle) @ frame  # the world turn, in F
  old = Rotation.from_davenport(axes, 'intrinsic', out[:, index])
  out[:, index] = (Rotation.from_matrix(turn) * old).as_davenport(axes, 'intrinsic')
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

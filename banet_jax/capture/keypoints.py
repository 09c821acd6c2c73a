"""The classic multi-camera keypoint method: triangulated landmarks -> OpenSim kinematics.

What Pose2Sim and OpenCap do, on this project's model and front end, as the reference
BANet is compared with on a real capture (and a method of its own for users with three or
more calibrated cameras):

1. triangulation: BlazePose landmarks of every camera -> world points (T, 33, 3)
   (`placement.triangulate_landmarks`, visibility-weighted DLT with outlier cameras
   dropped; `pipeline.Capture.triangulate`);
2. `reject_outliers`: limb landmarks whose distance to their proximal neighbour is far
   from its median (a wrong-limb triangulation) removed; then `filtering.filter_points`: zero-lag
   low-pass Butterworth per coordinate (Pose2Sim's default: 6 Hz, 4th order), short
   gaps bridged, long gaps left missing;
3. `estimate_scales`: per-body isotropic scale factors of the project model from median
   segment lengths (hip-knee, knee-ankle, ...) against the model's at its default pose;
4. inverse kinematics (`banet_jax.skeleton.ik.solve_ik`) of the scaled model on the
   filtered points with the marker set `LANDMARK_MARKERS` and weights `MARKER_WEIGHTS`;
   the pelvis translation comes out of the IK with the pose (no placement step).

`solve_keypoints(skel, points, fps)` runs 2-4 on world points; `keypoints_capture(capture,
out_dir)` runs 1-4 on a `pipeline.Capture` and writes the same files as BANet's
`predict.predict_capture` (`predict.write_capture_outputs`: .mot / .trc / .osim, overlays,
angles.png, predictions.npz, report.json; no network_inputs.png, the method has no
network). `camera_subset_spread` re-solves with each subset of the cameras, to tell which
coordinates the cameras determine.

Limits (measured on exact synthetic landmarks of the project model): the pelvis carries
no landmark (BlazePose's hips are on the femurs' centres), so its tilt is seen only
through the lumbar joint's lever to the shoulders. A trunk factor 2.6% short (what a clip
held in 8 deg of lumbar flexion gives: it shortens the hip-shoulder distance) comes out
as 3.6 deg of pelvis tilt and 7.9 deg of lumbar extension, with 4 mm shoulder residuals;
with an upright trunk both are within 0.7 deg. Pelvis tilt, lumbar extension and
hip flexion (relative to the pelvis) are the least determined sagittal coordinates.

Conventions: world = the calibration's (OpenSim ground: metres, y up); points (T, 33, 3)
in `persons.LANDMARK_NAMES` order (BlazePose's left = the person's left), NaN where not
triangulated; coordinates (T, C) in `skel.coordinate_names` order, radians and metres;
scales (B, 3) in `skel.body_names` order, the same factor on x, y and z of a body.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import time
from collections.abc import Mapping, Sequence

import jax
import numpy as np
from scipy.spatial.transform import Rotation

from banet_jax import filtering
from banet_jax.capture import persons
from banet_jax.capture import placement
from banet_jax.capture import predict
from banet_jax.skeleton import Skeleton, forward_kinematics
from banet_jax.skeleton import ik
from banet_jax.skeleton.models import project_skeleton

# BlazePose landmark -> marker of the project model (banet_fullbody.osim, markers in its
# fullbody_table.py) that lies where BlazePose puts the landmark. BlazePose was trained
# on points a person labels in images: joint middles, which the model's joint-centre
# markers (xJC) stand for. No marker is placed on the subject (there is no static trial),
# so a landmark's systematic offset from its marker stays in the residuals.
LANDMARK_MARKERS: dict[int, str] = {
    # Hips: the hip joint centres. BlazePose cannot see the femoral heads and puts its
    # hips wider apart than the model's centres (0.19 against 0.17 m on the Pose2Sim
    # demo); the pelvis factor of `estimate_scales`, from their spacing, absorbs that.
    23: 'LHJC', 24: 'RHJC',
    # Knees and ankles: the joint centres (epicondyle / malleoli midpoints); BlazePose
    # marks the middle of the joint.
    25: 'LKJC', 26: 'RKJC',
    27: 'LAJC', 28: 'RAJC',
    # Heels: posterior calcaneus, 30 mm above the sole, where BlazePose's heel is.
    29: 'LCAL', 30: 'RCAL',
    # Foot index = the tip of the toes (2nd toe). The nearest marker is HLX, the tip of
    # the hallux: the same distance from the heel (0.26 m, de Leva's foot length) and
    # 15 mm medial of the 2nd toe. TOE is the dorsum of the 2nd metatarsal head, 73 mm
    # behind the tip: it would pull the foot forwards.
    31: 'LHLX', 32: 'RHLX',
    # Shoulders: the glenohumeral centre; BlazePose's shoulder is on the joint, not on
    # the acromion (ACR, 40 mm above and 30 mm lateral).
    11: 'LSJC', 12: 'RSJC',
    13: 'LEJC', 14: 'REJC',
    15: 'LWJC', 16: 'RWJC',
    # Hand: BlazePose's "index" and "pinky" are the first knuckles of those fingers (the
    # metacarpophalangeal joints: MCP2, MCP5 on the model's hand). With the wrist they
    # give the hand's plane, hence pronation and wrist angles.
    19: 'LMCP2', 20: 'RMCP2',
    17: 'LMCP5', 18: 'RMCP5',
    # No head landmark. The nose, eyes and mouth have no marker nearby (FHEAD is the
    # glabella, ~50 mm above and behind the nose tip). The ears have one, HEAD (the side
    # of the head, ~40 mm above the ear canal), but the model's head is rigid with the
    # trunk (one `torso` body) and a person's is not: on the Pose2Sim demo (the subject
    # holds the head forward and bent) the ears sat 90-100 mm anterior of HEAD in the torso
    # frame, all clip long; even at weight 0.1 they flexed the lumbar joint by 17 deg on
    # average and raised the shoulder residuals from 12-20 to 20-29 mm RMS.
}

# IK weights (OpenSim's IK task weights), relative. Joint centres, heels and toe tips 1:
# the points BlazePose places best and the ones that define the limbs' angles. Hands 0.2:
# small in the image and BlazePose's least precise body points (17-27 mm RMS residual on
# the demo against 6-12 mm for the wrists), they should orient the hand, not pull the
# forearm.
MARKER_WEIGHTS: dict[str, float] = {
    **{f'{s}{m}': 1.0 for s in 'LR' for m in ('HJC', 'KJC', 'AJC', 'CAL', 'HLX', 'SJC',
                                              'EJC', 'WJC')},
    **{f'{s}{m}': 0.2 for s in 'LR' for m in ('MCP2', 'MCP5')},
}

# The four landmarks a frame needs to be solved: hips and shoulders give the pelvis its
# position and heading (the IK's starting point, `_initial_coordinates`) and the trunk
# its orientation.
TRUNK_LANDMARKS = (23, 24, 11, 12)

# Segments measured for `estimate_scales`, in the order they are solved (the trunk's
# model length depends on the pelvis factor): name, the (end a, end b) model markers of
# each side (an end of several markers is their midpoint; the landmarks are those of
# LANDMARK_MARKERS), and the bodies that get the segment's factor. Paired segments
# average the left and right lengths: BlazePose's single-side lengths are noisy (one
# side is often occluded) and the model is symmetric.
SCALE_SEGMENTS: tuple[tuple[str, tuple, tuple[str, ...]], ...] = (
    ('pelvis', ((('LHJC',), ('RHJC',)),), ('pelvis',)),
    ('trunk', ((('LHJC', 'RHJC'), ('LSJC', 'RSJC')),), ('torso',)),
    # The patella rides on the femur (its splines scale with it).
    ('thigh', ((('LHJC',), ('LKJC',)), (('RHJC',), ('RKJC',))),
     ('femur_l', 'patella_l', 'femur_r', 'patella_r')),
    ('shank', ((('LKJC',), ('LAJC',)), (('RKJC',), ('RAJC',))), ('tibia_l', 'tibia_r')),
    # Foot length heel -> toe tip scales the whole foot (talus, calcaneus, toes).
    ('foot', ((('LCAL',), ('LHLX',)), (('RCAL',), ('RHLX',))),
     ('talus_l', 'calcn_l', 'toes_l', 'talus_r', 'calcn_r', 'toes_r')),
    ('upper_arm', ((('LSJC',), ('LEJC',)), (('RSJC',), ('REJC',))), ('humerus_l', 'humerus_r')),
    # Elbow -> wrist; the hand is too small in the images to measure and follows.
    ('forearm', ((('LEJC',), ('LWJC',)), (('REJC',), ('RWJC',))),
     ('ulna_l', 'radius_l', 'hand_l', 'ulna_r', 'radius_r', 'hand_r')),
)
SCALE_LIMITS = (0.6, 1.6)  # factors outside are clipped (and reported)

# Landmark -> its proximal neighbour on the limbs, proximal entries first (for
# `reject_outliers`).
LIMB_PARENTS: dict[int, int] = {
    25: 23, 27: 25, 29: 27, 31: 27,  # left leg: hip, knee, ankle, heel / foot index
    26: 24, 28: 26, 30: 28, 32: 28,
    13: 11, 15: 13, 17: 15, 19: 15,  # left arm: shoulder, elbow, wrist, pinky / index
    14: 12, 16: 14, 18: 16, 20: 16,
}
OUTLIER_TOLERANCE = 0.4
OUTLIER_MIN_M = 0.05

MIN_MARKERS = 8  # a frame is solved with at least this many of the markers (and the trunk)
CROP_SIZE = 16  # the capture's network crops, unused here: the smallest that works


class KeypointError(ValueError):
  """Inputs the keypoint method cannot solve; the message says what to change."""


# ---- outliers -------------------------------------------------------------------------


def reject_outliers(points, *, tolerance: float = OUTLIER_TOLERANCE,
                    min_deviation_m: float = OUTLIER_MIN_M) -> tuple[np.ndarray, np.ndarray]:
  """Limb landmarks too far from (or too near) their proximal neighbour, set to NaN.

  A triangulation from two cameras always fits (two rays nearly meet), so a landmark
  that BlazePose put on the wrong limb in one of them can land a metre away (the demo's
  right ankle, frames 57-59: 1.2 m from the knee for a 0.38 m shank). The Butterworth
  filter would smear it over its neighbours, so it goes first, by segment length: along
  `LIMB_PARENTS` (proximal first), a landmark whose distance to its parent differs
  from the median of that distance over the clip by more than `tolerance` x median
  (and `min_deviation_m`, for the short hand and foot segments) is rejected, and so are
  the landmarks distal to it in that frame (they came from the same wrong limb, or
  cannot be checked). On the demo the inliers stay within 0.74-1.35 x the median, the
  outliers are 2-14 x. The trunk (hips, shoulders) is not checked: nothing proximal.

  Args:
    points: (T, 33, 3) world landmarks (m), NaN where missing.
    tolerance: allowed relative deviation of a segment from its median length.
    min_deviation_m: deviations below this are always allowed (m).

  Returns:
    points with the outliers NaN (a copy), and rejected (T, 33) bool.
  """
  points = np.array(points, np.float64)
  rejected = np.zeros(points.shape[:2], bool)
  for child, parent in LIMB_PARENTS.items():  # parents come first
    length = np.linalg.norm(points[:, child] - points[:, parent], axis=-1)
    if not np.isfinite(length).any():
      continue
    median = np.nanmedian(length)
    bad = np.abs(length - median) > max(tolerance * median, min_deviation_m)  # NaN: False
    rejected[:, child] = bad | rejected[:, parent]
    points[rejected[:, child], child] = np.nan
  return points, rejected


# ---- scaling --------------------------------------------------------------------------


def _marker_landmarks(skel: Skeleton) -> dict[str, int]:
  """{marker: landmark} of LANDMARK_MARKERS whose marker the model has."""
  return {m: lm for lm, m in LANDMARK_MARKERS.items() if m in skel.marker_names}


@functools.partial(jax.jit, static_argnums=0)
def _fk_markers(skel: Skeleton, q, scales):
  """(..., M, 3) model markers (one compiled FK per skeleton: eager FK costs ~0.3 s a
  call, and scaling and the starting pose make a dozen)."""
  return forward_kinematics(skel, q, scales).markers


def _default_markers(skel: Skeleton, scales: np.ndarray) -> dict[str, np.ndarray]:
  """Model marker positions (m, ground) at the default pose with body scales (B, 3)."""
  markers = _fk_markers(skel, np.asarray(skel.default_coordinates, np.float32),
                        np.asarray(scales, np.float32))
  return dict(zip(skel.marker_names, np.asarray(markers, np.float64)))


def _segment_vectors(markers: Mapping[str, np.ndarray], sides) -> np.ndarray:
  """(sides, 3) end b - end a of a segment (an end of several markers: their mean)."""
  return np.stack([np.mean([markers[m] for m in b], axis=0)
                   - np.mean([markers[m] for m in a], axis=0) for a, b in sides])


def estimate_scales(skel: Skeleton, points, *, limits: tuple[float, float] = SCALE_LIMITS
                    ) -> tuple[np.ndarray, dict]:
  """Per-body scale factors of `skel` from triangulated landmark distances.

  For each segment of `SCALE_SEGMENTS` (in order), the measured length is the median
  over frames of the distance between its end landmarks (mean of the left and right
  medians for paired segments; one side alone when the other is never seen). The
  model's length between the same markers at the default pose is linear in the
  segment's factor s once the earlier segments' factors are applied (|a + s b|, a = 0
  unless the path crosses a body scaled by another segment: the trunk's runs through the
  pelvis), so s solves |a + s b| = measured exactly. Factors are isotropic (x = y = z),
  clipped to `limits`; a segment never measured keeps 1.

  Args:
    skel: the unscaled model (e.g. the project's banet_fullbody.osim).
    points: (T, 33, 3) world landmarks in metres (NaN where missing), filtered or not.
    limits: (low, high) allowed factors.

  Returns:
    scales (B, 3) in `skel.body_names` order, and a report {segment: {'length_m',
    'model_length_m' (unscaled), 'factor', 'clipped' (bool), 'measured' (bool),
    'bodies'}}.
  """
  points = np.asarray(points, np.float64)
  if points.ndim != 3 or points.shape[1:] != (len(persons.LANDMARK_NAMES), 3):
    raise ValueError(f'points must be (T, {len(persons.LANDMARK_NAMES)}, 3), got {points.shape}')
  landmark_of = _marker_landmarks(skel)
  scales = np.ones((skel.num_bodies, 3))
  unscaled = _default_markers(skel, scales)
  report = {}
  for name, sides, bodies in SCALE_SEGMENTS:
    ends = [e for side in sides for e in side]
    if not all(m in landmark_of for end in ends for m in end):
      continue  # a model without these markers: this segment is not measured
    missing = [b for b in bodies if b not in skel.body_names]
    if missing:
      raise KeypointError(f'{skel.source}: bodies {missing} are not in the model; the keypoint '
                          'method scales the project model (banet_fullbody.osim) or one with '
                          "Rajagopal's body names")
    index = [skel.body_names.index(b) for b in bodies]
    medians = []
    for a, b in sides:
      pa = points[:, [landmark_of[m] for m in a]].mean(axis=1)
      pb = points[:, [landmark_of[m] for m in b]].mean(axis=1)
      length = np.linalg.norm(pb - pa, axis=-1)
      if np.isfinite(length).any():
        medians.append(float(np.nanmedian(length)))
    trial = scales.copy()
    trial[index] = 1.0
    at_one = _segment_vectors(_default_markers(skel, trial), sides)
    trial[index] = 2.0
    slope = _segment_vectors(_default_markers(skel, trial), sides) - at_one  # b (sides, 3)
    offset = at_one - slope  # a
    model_length = float(np.mean(np.linalg.norm(_segment_vectors(unscaled, sides), axis=-1)))
    entry = {'bodies': list(bodies), 'model_length_m': model_length, 'measured': bool(medians)}
    if medians:
      measured = float(np.mean(medians))
      # |a + s b|^2 = L^2, averaged over the sides (they are mirror images): a quadratic
      # in s whose positive root is the factor.
      bb = float(np.mean(np.sum(slope * slope, -1)))
      ab = float(np.mean(np.sum(offset * slope, -1)))
      aa = float(np.mean(np.sum(offset * offset, -1)))
      roots = np.roots([bb, 2.0 * ab, aa - measured ** 2])
      roots = roots[np.isreal(roots) & (roots.real > 0)].real
      factor = float(roots.max()) if roots.size else 0.0  # shorter than the fixed part
      clipped = not limits[0] <= factor <= limits[1]
      factor = float(np.clip(factor, *limits))
      entry.update(length_m=measured, factor=factor, clipped=clipped)
    else:
      entry.update(length_m=None, factor=1.0, clipped=False)
    scales[index] = entry['factor']
    report[name] = entry
  return scales, report


# ---- inverse kinematics ---------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class KeypointSolution:
  """Result of `solve_keypoints` (T frames, C coordinates, B bodies, M markers).

  coordinates: (T, C) rad / m in `skel.coordinate_names` order; the pelvis translation is
    the body's position in the points' world. Frames without a solution hold the nearest
    solved frame's coordinates (see `solved`).
  scales: (B, 3) body scale factors used (isotropic).
  marker_errors: (T, M) m, distance of each model marker to its filtered landmark; NaN
    where the landmark is missing or the frame has no solution.
  marker_names: (M,) the model markers, in column order.
  used_landmarks: (M,) the BlazePose landmark index of each marker.
  solved: (T,) bool, frames solved by the IK.
  points: (T, 33, 3) the filtered landmarks the IK fitted (m).
  rejected: (T, 33) bool, landmarks `reject_outliers` removed before filtering.
  scale_report: `estimate_scales`' report ({} when the scales were given).
  timings_s: seconds spent filtering, scaling and in the IK.
  """

  coordinates: np.ndarray
  scales: np.ndarray
  marker_errors: np.ndarray
  marker_names: tuple[str, ...]
  used_landmarks: tuple[int, ...]
  solved: np.ndarray
  points: np.ndarray
  rejected: np.ndarray
  scale_report: dict
  timings_s: dict

  @property
  def marker_rms_mm(self) -> dict[str, float]:
    """{marker: RMS error over solved frames with the landmark (mm)}; NaN if never seen."""
    errors = self.marker_errors[self.solved]
    out = {}
    for m, name in enumerate(self.marker_names):
      e = errors[:, m][np.isfinite(errors[:, m])]
      out[name] = float(np.sqrt(np.mean(e ** 2)) * 1e3) if e.size else float('nan')
    return out

  @property
  def frames_without_solution(self) -> list[int]:
    return np.flatnonzero(~self.solved).tolist()


def _root_joint(skel: Skeleton):
  """The joint to ground, checked to be Rajagopal's: three identity rotations about
  the ground's axes, then identity translations along them, no frame offsets."""
  root = next((j for j in skel.joints if j.parent_body == -1), None)
  fix = ('the keypoint method needs a joint to ground like Rajagopal\'s ground_pelvis '
         '(rotations about z, x, y, translations x, y, z; the project model has it)')
  if root is None:
    raise KeypointError(f'{skel.source}: no joint to ground; {fix}')
  motions = list(root.rotations) + list(root.translations)
  ok = (len(root.rotations) == 3 and len(root.translations) == 3
        and all(m.coordinate >= 0 and getattr(m.function, 'is_identity', False)
                and np.count_nonzero(m.axis) == 1 and np.max(m.axis) == 1.0 for m in motions)
        and all(np.allclose(r, np.eye(3)) for r in (root.parent_rotation, root.child_rotation))
        and not np.any(root.parent_offset) and not np.any(root.child_offset))
  if not ok:
    raise KeypointError(f'{skel.source}: joint {root.name!r} is not supported; {fix}')
  return root


def _initial_coordinates(skel: Skeleton, points: np.ndarray, scales: np.ndarray,
                         solvable: np.ndarray) -> np.ndarray:
  """(T, C) starting coordinates: the model's defaults, with the pelvis placed on the
  landmarks in solvable frames.

  The IK's own segment registration needs three markers on a body, which BlazePose's
  points never give (the pelvis has none: the hip centres are on the femurs). So the
  pelvis frame is built from the hips and shoulders: z (right) along left -> right hip,
  y (up) the mid-hip -> mid-shoulder direction made orthogonal to z, x = y cross z
  (anterior; the model's trunk is upright at the default pose, mid-shoulder 6 mm behind
  mid-hip). Its rotation gives the root's Euler angles (scipy, the joint's body-fixed
  axis sequence), and the translation puts the model's mid-hip-centre on the landmarks'.
  Limbs start at the default pose; the IK's coarse-to-fine schedule takes it from there.
  """
  root = _root_joint(skel)
  q = np.tile(np.asarray(skel.default_coordinates, np.float64), (len(points), 1))
  rot_coords = [m.coordinate for m in root.rotations]
  trans_coords = [m.coordinate for m in root.translations]
  sequence = ''.join('XYZ'[int(np.argmax(m.axis))] for m in root.rotations)
  # The mid-hip-centre in the pelvis frame (= ground with the root at zero).
  zero = np.asarray(skel.default_coordinates, np.float64).copy()
  zero[rot_coords + trans_coords] = 0.0
  markers = np.asarray(_fk_markers(skel, zero.astype(np.float32), scales.astype(np.float32)),
                       np.float64)
  hips = [skel.marker_names.index(LANDMARK_MARKERS[i]) for i in TRUNK_LANDMARKS[:2]]
  local = markers[hips].mean(axis=0)
  p = points[solvable]
  left_hip, right_hip, left_shoulder, right_shoulder = (p[:, i] for i in TRUNK_LANDMARKS)
  mid_hip = 0.5 * (left_hip + right_hip)
  z = right_hip - left_hip
  z /= np.linalg.norm(z, axis=-1, keepdims=True)
  up = 0.5 * (left_shoulder + right_shoulder) - mid_hip
  x = np.cross(up, z)
  x /= np.linalg.norm(x, axis=-1, keepdims=True)
  rotation = np.stack([x, np.cross(z, x), z], axis=-1)  # columns: pelvis axes in ground
  q[np.ix_(solvable, rot_coords)] = Rotation.from_matrix(rotation).as_euler(sequence)
  q[np.ix_(solvable, trans_coords)] = mid_hip - rotation @ local
  return q


def _clamped(skel: Skeleton) -> Skeleton:
  """`skel` with every coordinate but the root's held in its range of motion in the IK.

  OpenSim's IK bounds clamped coordinates; the project model is written unclamped so that
  any motion replays unchanged (fullbody_table.CLAMP_COORDINATES). BlazePose's few points
  per limb leave mirror solutions that the ranges exclude: on 64 random poses across the
  ranges (exact points), 20 unclamped frames ended in such a minimum (a foot turned over,
  ankle -90 deg, 10-30 mm residuals), none clamped. The exported files use the model
  as it is; only the IK sees this copy.
  """
  root = _root_joint(skel)
  clamped = np.ones(skel.num_coordinates, bool)
  clamped[[m.coordinate for m in (*root.rotations, *root.translations)]] = False
  return skel.derive(clamped=clamped)


def solve_keypoints(skel: Skeleton, points, fps: float, *,
                    cutoff_hz: float | None = filtering.CUTOFF_HZ,
                    outlier_tolerance: float | None = OUTLIER_TOLERANCE, scales=None,
                    min_markers: int = MIN_MARKERS, iters: int = 50) -> KeypointSolution:
  """Outliers, filter, scale and inverse kinematics of triangulated BlazePose landmarks.

  Steps: `reject_outliers` (skipped when `outlier_tolerance` is None); `filtering.filter_points`
  (skipped when `cutoff_hz` is None); `estimate_scales` on the filtered points (unless
  `scales` is given); `ik.solve_ik` of the scaled model on the
  markers of `LANDMARK_MARKERS` that the model has, weights `MARKER_WEIGHTS`, the joints
  held in their ranges of motion (`_clamped`; float32: millimetre-level work). The
  first frame starts from `_initial_coordinates` with the IK's coarse-to-fine schedule,
  every later frame from the previous frame's solution (`sequential`, as OpenSim's IK
  tool does; the points are filtered, so the motion is smooth). Solving every frame
  from its own start instead gave the same residuals on the demo (18.9 mm RMS) but let
  the shoulder flip between Euler branches near gimbal lock from one frame to the next
  (arm_flex_l jumping by up to 150 deg; mean |second difference| 14.8 deg against 0.95);
  the sequence costs ~0.6 s per 100 frames on a 2-core CPU after its compilation.

  A frame is solved when its four trunk landmarks (hips, shoulders) and at least
  `min_markers` markers are known after filtering; any other frame (a long gap) gets
  the coordinates of the nearest solved frame (earlier on a tie), as Pose2Sim fills
  large gaps with the last value, and NaN marker errors; `solved` lists which is which.
  A limb whose landmarks are all missing in a solved frame keeps the previous frame's
  angles; its NaN marker errors show it. After a long gap the sequence resumes from the
  last solution before it.

  Args:
    skel: the unscaled model (banet_fullbody.osim or one with its marker names).
    points: (T, 33, 3) world landmarks in metres, NaN where missing.
    fps: frame rate of the points (Hz).
    cutoff_hz: low-pass cutoff (Hz), None: no filtering.
    outlier_tolerance: `reject_outliers`' tolerance, None: no rejection.
    scales: optional (B, 3) body scale factors (default: estimated).
    min_markers: markers a frame needs to be solved.
    iters: Levenberg-Marquardt iteration cap of the full problem.

  Returns:
    KeypointSolution.

  Raises:
    KeypointError: no frame can be solved.
  """
  points = np.asarray(points, np.float64)
  if points.ndim != 3 or points.shape[1:] != (len(persons.LANDMARK_NAMES), 3):
    raise ValueError(f'points must be (T, {len(persons.LANDMARK_NAMES)}, 3), got {points.shape}')
  timings = {}
  t0 = time.perf_counter()
  if outlier_tolerance is None:
    kept, rejected = points, np.zeros(points.shape[:2], bool)
  else:
    kept, rejected = reject_outliers(points, tolerance=outlier_tolerance)
  filtered = kept if cutoff_hz is None else filtering.filter_points(kept, fps, cutoff_hz)
  timings['filter'] = time.perf_counter() - t0
  t0 = time.perf_counter()
  if scales is None:
    scales, scale_report = estimate_scales(skel, filtered)
  else:
    scales, scale_report = np.asarray(scales, np.float64), {}
    if scales.shape != (skel.num_bodies, 3):
      raise ValueError(f'scales must be ({skel.num_bodies}, 3), got {scales.shape}')
  timings['scaling'] = time.perf_counter() - t0
  landmark_of = _marker_landmarks(skel)
  missing = [LANDMARK_MARKERS[i] for i in TRUNK_LANDMARKS
             if LANDMARK_MARKERS[i] not in landmark_of]
  if missing:
    raise KeypointError(f'{skel.source}: markers {missing} are missing; the keypoint method '
                        'needs the hip and shoulder joint centre markers of the project model '
                        '(banet_fullbody.osim)')
  names = tuple(landmark_of)
  used = tuple(landmark_of[n] for n in names)
  targets = filtered[:, list(used)]
  known = np.all(np.isfinite(targets), axis=-1)  # (T, M)
  trunk = np.all(np.isfinite(filtered[:, list(TRUNK_LANDMARKS)]), axis=(-2, -1))
  solved = trunk & (known.sum(axis=-1) >= min_markers)
  if not solved.any():
    raise KeypointError(
        f'no frame of {len(points)} has both hips, both shoulders and {min_markers} of the '
        f'{len(names)} landmarks triangulated: check that the cameras see the whole person '
        'and that the calibration matches the videos')
  t0 = time.perf_counter()
  init = _initial_coordinates(skel, filtered, scales, solved)
  # The sequence starts at the first solved frame's start (frames before it have no
  # target and keep it). Unsolved frames stay in the sequence (every clip length
  # compiles one program, however many frames are missing), without targets: the
  # solution is carried through them.
  init[0] = init[np.argmax(solved)]
  targets = np.where(solved[:, None, None], targets, np.nan)
  weights = np.array([MARKER_WEIGHTS.get(n, 1.0) for n in names])
  result = ik.solve_ik(_clamped(skel), targets.astype(np.float32), weights,
                       init.astype(np.float32), scales.astype(np.float32), marker_names=names,
                       iters=iters, sequential=True, hierarchical=True)
  coordinates = np.asarray(result.coordinates, np.float64)
  errors = np.asarray(result.marker_errors, np.float64)
  timings['ik'] = time.perf_counter() - t0
  good = np.flatnonzero(solved)
  nearest = good[np.argmin(np.abs(good[None, :] - np.arange(len(points))[:, None]), axis=1)]
  coordinates = coordinates[nearest]
  errors[~solved] = np.nan
  return KeypointSolution(coordinates=coordinates, scales=scales, marker_errors=errors,
                          marker_names=names, used_landmarks=used, solved=solved,
                          points=filtered, rejected=rejected, scale_report=scale_report,
                          timings_s=timings)


# ---- a capture ------------------------------------------------------------------------


def keypoints_capture(capture, out_dir, *, name: str = 'capture',
                      skeleton: Skeleton | None = None, cutoff_hz: float = filtering.CUTOFF_HZ,
                      overlay_count: int = 6, segment_frames: int = 256) -> dict:
  """Runs the keypoint method on `capture` (a `pipeline.Capture`) and writes the outputs.

  The capture is decoded once (BlazePose in every camera, as for BANet; the network
  crops it makes on the way are dropped), its landmarks triangulated with all cameras
  (`capture.triangulate`), then `solve_keypoints`; the files are BANet's
  (`predict.write_capture_outputs`, without network_inputs.png). The IK solves the
  body in the calibration's world; where the calibration has no floor the writer
  estimates it from the feet and shifts pelvis_ty by it.

  report.json adds: method 'keypoints'; network_cameras [] (no network; 'held_frames',
  which are about network crops, is dropped); 'keypoints': the filter (cutoff Hz,
  order, longest gap bridged), the scale factors per segment (measured and model
  lengths, clipped or not), the per-body factors, the marker set and weights, per-marker
  RMS error (mm), the frames without a solution, and timings.

  Args:
    capture: an opened `pipeline.Capture` with three or more cameras.
    out_dir: output folder.
    name: stem of the .mot / .trc / .osim files.
    skeleton: the model (default: the project's banet_fullbody.osim).
    cutoff_hz: low-pass cutoff of the triangulated landmarks (Hz).
    overlay_count: frames shown in the overlays.
    segment_frames: frames decoded per batch (memory bound only).

  Returns:
    The report (also written as report.json), with the output paths under 'files'.
  """
  if len(capture.names) < 3:
    raise KeypointError(f'the keypoint method triangulates; give three or more calibrated '
                        f'videos (got {len(capture.names)}: {capture.names})')
  skel = skeleton if skeleton is not None else project_skeleton()
  shown = predict.thumbnail_frames(capture.num_frames, overlay_count)
  for _ in capture.segments(CROP_SIZE, segment_frames, shown):
    pass  # landmarks and thumbnails are kept by the capture
  report = capture.report
  report['network_cameras'] = []
  report.pop('held_frames', None)
  t0 = time.perf_counter()
  points, _ = capture.triangulate()
  report['timings_s']['triangulation'] = time.perf_counter() - t0
  solution = solve_keypoints(skel, points, capture.fps, cutoff_hz=cutoff_hz)
  report['timings_s'].update(solution.timings_s)
  report['keypoints'] = {
      'cutoff_hz': cutoff_hz,
      'filter': {'type': 'butterworth, zero lag (sosfiltfilt)',
                 'order': filtering.FILTER_ORDER,
                 'max_gap_frames_bridged': int(np.floor(filtering.MAX_GAP_S * capture.fps
                                                        + 1e-9))},
      'scales': solution.scale_report,
      'clipped_scales': [k for k, v in solution.scale_report.items() if v['clipped']],
      'body_scales': dict(zip(skel.body_names, solution.scales[:, 0].tolist())),
      'markers': {persons.LANDMARK_NAMES[lm]: m for lm, m in
                  zip(solution.used_landmarks, solution.marker_names)},
      'marker_weights': {m: MARKER_WEIGHTS.get(m, 1.0) for m in solution.marker_names},
      'marker_rms_mm': solution.marker_rms_mm,
      'frames_without_solution': solution.frames_without_solution,
  }
  return predict.write_capture_outputs(
      capture, skel, solution.coordinates, solution.scales, out_dir, name=name,
      method='keypoints', translation='solved', points=points, highlight=(),
      arrays={'marker_errors': solution.marker_errors,
              'marker_names': np.array(solution.marker_names), 'solved': solution.solved},
      world_arrays={'filtered_landmarks': solution.points},
      curve_label=f'keypoints ({cutoff_hz:g} Hz)',
      title=f'{name}: keypoints of {", ".join(capture.names)}')


def camera_subset_spread(skel: Skeleton, landmarks, visibility, cameras: Sequence, fps: float, *,
                         subset_size: int | None = None,
                         cutoff_hz: float | None = filtering.CUTOFF_HZ,
                         names: Sequence[str] | None = None) -> dict:
  """How much each coordinate moves when the method loses cameras.

  Solves with all cameras, then with every subset of `subset_size` cameras (default:
  leave one out), each from scratch (triangulation, filter, scales, IK), and compares.
  The BlazePose landmarks of one camera do not depend on the others, so this equals
  running `keypoints_capture` on the videos of each subset (for one person).

  Args:
    skel: the unscaled model.
    landmarks: (C, T, 33, 2) pixels as the cameras see them (distorted), e.g.
      `capture.landmarks`.
    visibility: (C, T, 33), e.g. `capture.visibility`.
    cameras: C `calibration.CameraCalibration`s.
    fps: frame rate (Hz).
    subset_size: cameras per subset, 2 <= n < C (default C - 1).
    cutoff_hz: as `solve_keypoints`.
    names: camera names for the report (default c0, c1, ...).

  Returns:
    {'reference': KeypointSolution (all cameras), 'subsets': {camera names (tuple):
    KeypointSolution}, 'mean_abs_diff': {coordinate: mean over subsets and the frames
    both solved of |subset - all| (degrees for rotational coordinates, mm for
    translations)}, 'per_subset': {camera names: {coordinate: same, that subset}},
    'at_bounds': {coordinate: fraction of the reference's solved frames on a bound of
    its range (clamped by the IK; there the spread means nothing)}}.
  """
  landmarks = np.asarray(landmarks)
  visibility = np.asarray(visibility)
  count = len(cameras)
  names = tuple(names) if names is not None else tuple(f'c{i}' for i in range(count))
  size = count - 1 if subset_size is None else int(subset_size)
  if not 2 <= size < count:
    raise ValueError(f'subset_size must be between 2 and {count - 1} for {count} cameras, '
                     f'got {size}')

  def solve(chosen):
    points, _ = placement.triangulate_landmarks(landmarks[list(chosen)],
                                                visibility[list(chosen)],
                                                [cameras[i] for i in chosen])
    return solve_keypoints(skel, points, fps, cutoff_hz=cutoff_hz)

  reference = solve(range(count))
  rotational = np.asarray(skel.coordinate_motion_types) != 'translational'
  unit = np.where(rotational, 180.0 / np.pi, 1e3)  # deg, mm
  subsets, per_subset, diffs = {}, {}, []
  for chosen in itertools.combinations(range(count), size):
    key = tuple(names[i] for i in chosen)
    solution = solve(chosen)
    both = reference.solved & solution.solved
    diff = solution.coordinates[both] - reference.coordinates[both]
    # Angles differ modulo a turn (a heading near +-180 deg may come out on either side).
    diff = np.where(rotational, np.angle(np.exp(1j * diff)), diff)
    diff = np.abs(diff) * unit
    subsets[key] = solution
    per_subset[key] = dict(zip(skel.coordinate_names, diff.mean(axis=0).tolist()))
    diffs.append(diff)
  mean = np.concatenate(diffs).mean(axis=0)
  # A coordinate held on a bound of its range agrees with itself whatever the cameras:
  # a small spread there says nothing.
  lo, hi = np.asarray(skel.coordinate_ranges, np.float64).T
  q = reference.coordinates[reference.solved]
  at_bounds = (np.isclose(q, lo, rtol=0.0, atol=1e-4)
               | np.isclose(q, hi, rtol=0.0, atol=1e-4)).mean(axis=0)
  return {'reference': reference, 'subsets': subsets,
          'mean_abs_diff': dict(zip(skel.coordinate_names, mean.tolist())),
          'per_subset': per_subset,
          'at_bounds': dict(zip(skel.coordinate_names, at_bounds.tolist()))}

"""Forward kinematics, foot contacts, root planting and leg IK for procedural motions.

Everything here runs the project's JAX forward kinematics
(`banet_jax.skeleton.forward_kinematics`) through one jit-compiled function per
skeleton that takes a fixed-size chunk of poses (`FK_CHUNK` poses, float64):
clips of any length and IK Jacobians are flattened, padded
and fed chunk by chunk, so a process compiles FK once per skeleton (~8 s on CPU)
and never again.

Foot contacts: six points per foot on the sole, defined from the project model's
foot markers in the zero pose (where every body frame is parallel to ground and
the soles lie on the floor y = 0): lateral and medial heel (under RCAL), under the
1st and 5th metatarsal heads (RMT1/RMT5 moved 15 mm to the head centre) on
`calcn_*`, and under the hallux tip (RHLX) and the 5th toe tip on `toes_*`. They
scale with the body scale factors like markers do.

Two ways to put a motion on the floor:
* `solve_leg_ik` (every family): the pelvis pose and the poses of both feet
  (calcaneus or toes) are given; hip, knee, ankle, subtalar and MTP angles are
  solved by Levenberg-Marquardt so both feet reach their targets exactly (closed
  kinematic chain: no skating, soles on the floor by construction).
* `plant_root` (a utility for motions given as joint angles only, e.g. to put an
  external clip on the floor): the root translation is computed so that the lowest
  contact point touches the floor and the contact points that bear weight do not
  slide horizontally (the root moves by minus their weighted displacement); flight
  frames are bridged by a cubic Hermite curve.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import numpy as np
from scipy import ndimage

from banet_jax.skeleton import Skeleton, forward_kinematics

FK_CHUNK = 2048  # poses per FK call (fixed shape: one compile per skeleton)
GRAVITY = 9.81  # m/s^2
SIDES = ('r', 'l')
LEG_COORDS = ('hip_flexion', 'hip_adduction', 'hip_rotation', 'knee_angle',
              'ankle_angle', 'subtalar_angle')
# Motions keep their joint angles inside the model's coordinate ranges by margins: the
# labels are the IK of a mesh on a clamped model, whose angles scatter ~0.5-2 deg around
# the driving ones, and a motion that runs along a limit would have that scatter cut
# off. Designed coordinates (upper body, `procedural._finalize`) keep RANGE_MARGIN; legs
# are solved here for foot targets and keep LEG_RANGE_MARGIN: every degree taken from
# the hip's 30 deg of extension or the ankle's range costs reach (with 2 deg fast walking
# slid 4.4 cm/s and lunges floated 10 mm, with 1 deg walking still slid > 3 cm/s, in the
# slow plausibility tests; the label IK clamps them to the ranges in any case).
RANGE_MARGIN = np.radians(2.0)
LEG_RANGE_MARGIN = np.radians(0.5)


@functools.lru_cache(maxsize=8)
def _fk_chunk_fn(skel: Skeleton):
  """jit(q (FK_CHUNK, C), scales (B, 3)) -> body positions (N, B, 3), rotations (N, B, 3, 3).

  One per model content (skeletons hash by content), so reloading a model file, or loading
  a copy of it, does not recompile.
  """

  def fk(q, scales):
    out = forward_kinematics(skel, q, scales)
    return out.body_positions, out.body_rotations

  return jax.jit(fk)


def fk_compile_count(skel: Skeleton) -> int:
  """How many shapes the chunked FK of `skel` has been compiled for (for tests)."""
  return _fk_chunk_fn(skel)._cache_size()  # pylint: disable=protected-access


def check_scales(skel: Skeleton, scales) -> np.ndarray:
  """(B, 3) float64 positive finite body scale factors; None -> ones."""
  if scales is None:
    return np.ones((skel.num_bodies, 3))
  s = np.asarray(scales, dtype=np.float64)
  if s.shape != (skel.num_bodies, 3):
    raise ValueError(f'scales must have shape ({skel.num_bodies}, 3) (one x/y/z factor per body '
                     f'in Skeleton.body_names order), got {s.shape}')
  if not np.all(np.isfinite(s)) or np.any(s <= 0):
    raise ValueError('scales must be finite and positive')
  return s


def body_poses(skel: Skeleton, q, scales=None) -> tuple[np.ndarray, np.ndarray]:
  """Body origins and orientations in the ground frame.

  Args:
    skel: the skeleton.
    q: (..., C) coordinates (radians / metres).
    scales: (B, 3) body scale factors of one subject, or None.

  Returns:
    positions (..., B, 3) in metres and rotations (..., B, 3, 3), float64 NumPy.
  """
  q = np.asarray(q, dtype=np.float64)
  if q.shape[-1:] != (skel.num_coordinates,):
    raise ValueError(f'q must have shape (..., {skel.num_coordinates}), got {q.shape}')
  s = check_scales(skel, scales)
  batch = q.shape[:-1]
  flat = q.reshape(-1, skel.num_coordinates)
  n = flat.shape[0]
  pad = (-n) % FK_CHUNK
  if pad:  # pad with a valid pose (the first one), results dropped below
    flat = np.concatenate([flat, np.repeat(flat[:1], pad, axis=0)], axis=0)
  fn = _fk_chunk_fn(skel)
  pos, rot = [], []
  with jax.enable_x64(True):
    for i in range(0, flat.shape[0], FK_CHUNK):
      p, r = fn(flat[i:i + FK_CHUNK], s)
      pos.append(np.asarray(p))
      rot.append(np.asarray(r))
  pos = np.concatenate(pos)[:n].reshape(batch + (skel.num_bodies, 3))
  rot = np.concatenate(rot)[:n].reshape(batch + (skel.num_bodies, 3, 3))
  return pos, rot


# ---- foot contact points ------------------------------------------------------

@dataclasses.dataclass(frozen=True, eq=False)
class FootContacts:
  """Sole contact points: point p is `offsets[p]` (unscaled, body frame) on `bodies[p]`."""

  names: tuple[str, ...]
  foot: np.ndarray  # (P,) 0 = right, 1 = left
  bodies: np.ndarray  # (P,) body index
  offsets: np.ndarray  # (P, 3) metres in the (unscaled) body frame

  def world(self, positions, rotations, scales=None) -> np.ndarray:
    """(..., P, 3) contact points from body poses (..., B, 3) and (..., B, 3, 3)."""
    local = self.offsets if scales is None else self.offsets * np.asarray(scales)[self.bodies]
    return (positions[..., self.bodies, :]
            + np.einsum('...pij,pj->...pi', rotations[..., self.bodies, :, :], local))


def foot_contacts(skel: Skeleton) -> FootContacts:
  """Six sole points per foot, placed from the foot markers in the zero pose."""
  return _foot_contacts(skel)


@functools.lru_cache(maxsize=8)
def _foot_contacts(skel: Skeleton) -> FootContacts:
  needed = [f'{s}{m}' for s in 'RL' for m in ('CAL', 'MT1', 'MT5', 'HLX')]
  missing = [m for m in needed if m not in skel.marker_names]
  if missing:
    raise ValueError(f'{skel.source}: foot contacts need the project model\'s foot markers '
                     f'{needed}; missing {missing}')
  # Default pose: zero angles, soles on the floor, body frames parallel to ground.
  pos, rot = body_poses(skel, np.asarray(skel.default_coordinates, dtype=np.float64))
  marker = {}
  for name in needed:
    m = skel.marker_index(name)
    b = int(skel.marker_bodies[m])
    marker[name] = pos[b] + rot[b] @ (skel.marker_offsets[m] @ np.ones(3))
  names, foot, bodies, offsets = [], [], [], []
  for k, (side, s) in enumerate((('R', 'r'), ('L', 'l'))):
    lateral = 1.0 if s == 'r' else -1.0  # +z is the subject's right
    cal, mt1, mt5, hlx = (marker[side + n] for n in ('CAL', 'MT1', 'MT5', 'HLX'))
    points = {
        # Heel pad centre ~12 mm in front of the posterior calcaneus, 22 mm either side.
        'heel_lat': (cal[0] + 0.012, cal[2] + 0.022 * lateral, 'calcn'),
        'heel_med': (cal[0] + 0.012, cal[2] - 0.022 * lateral, 'calcn'),
        # Metatarsal head centres: the markers sit 15 mm medial / lateral of them.
        'mt1': (mt1[0], mt1[2] + 0.015 * lateral, 'calcn'),
        'mt5': (mt5[0], mt5[2] - 0.015 * lateral, 'calcn'),
        'hallux': (hlx[0] - 0.005, hlx[2], 'toes'),
        # 5th toe tip: 55 % of the way from the MT5 head centre to the hallux tip
        # along the foot, at the MT5 head's medio-lateral position.
        'toe5': (mt5[0] + 0.55 * (hlx[0] - mt5[0]), mt5[2] - 0.015 * lateral, 'toes'),
    }
    for pname, (x, z, body) in points.items():
      b = skel.body_index(f'{body}_{s}')
      world = np.array([x, 0.0, z])  # on the floor (y = 0) in the zero pose
      names.append(f'{s}_{pname}')
      foot.append(k)
      bodies.append(b)
      offsets.append(rot[b].T @ (world - pos[b]))
  return FootContacts(tuple(names), np.array(foot), np.array(bodies), np.array(offsets))


def contact_points(skel: Skeleton, q, scales=None) -> np.ndarray:
  """(..., P, 3) world positions of the foot contact points for poses q (..., C)."""
  pos, rot = body_poses(skel, q, scales)
  return foot_contacts(skel).world(pos, rot, None if scales is None else check_scales(skel, scales))


# ---- pelvis orientation helpers ---------------------------------------------

def _rot(axis: int, angle) -> np.ndarray:
  """(..., 3, 3) right-handed rotations about coordinate axis 0/1/2."""
  angle = np.asarray(angle, dtype=np.float64)
  c, s = np.cos(angle), np.sin(angle)
  m = np.zeros(angle.shape + (3, 3))
  i, j = [(1, 2), (2, 0), (0, 1)][axis]
  m[..., axis, axis] = 1.0
  m[..., i, i] = c
  m[..., j, j] = c
  m[..., i, j] = -s
  m[..., j, i] = s
  return m


def rot_x(a):
  return _rot(0, a)


def rot_y(a):
  return _rot(1, a)


def rot_z(a):
  return _rot(2, a)


def axis_rotation(axis, angle) -> np.ndarray:
  """(..., 3, 3) right-handed rotations by `angle` (...) about unit `axis` (..., 3)."""
  axis = np.asarray(axis, dtype=np.float64)
  angle = np.asarray(angle, dtype=np.float64)
  axis, angle = np.broadcast_arrays(axis, angle[..., None])
  angle = angle[..., 0]
  c, s = np.cos(angle)[..., None, None], np.sin(angle)[..., None, None]
  x, y, z = axis[..., 0], axis[..., 1], axis[..., 2]
  zero = np.zeros_like(x)
  k = np.stack([np.stack([zero, -z, y], -1), np.stack([z, zero, -x], -1),
                np.stack([-y, x, zero], -1)], -2)
  outer = axis[..., :, None] * axis[..., None, :]
  return c * np.eye(3) + s * k + (1 - c) * outer


def exp_rotation(v) -> np.ndarray:
  """(..., 3, 3) rotation matrices of rotation vectors (..., 3)."""
  v = np.asarray(v, dtype=np.float64)
  angle = np.linalg.norm(v, axis=-1)
  axis = v / np.where(angle > 1e-12, angle, 1.0)[..., None]
  axis = np.where((angle > 1e-12)[..., None], axis, np.array([1.0, 0.0, 0.0]))
  return axis_rotation(axis, angle)


def pelvis_matrix(tilt, list_, rotation) -> np.ndarray:
  """R = Rz(tilt) Rx(list) Ry(rotation), the ground_pelvis joint's body-fixed order."""
  return rot_z(tilt) @ rot_x(list_) @ rot_y(rotation)


def pelvis_angles(r) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Inverse of `pelvis_matrix` for (..., 3, 3); rotation is unwrapped along axis 0."""
  r = np.asarray(r)
  list_ = np.arcsin(np.clip(r[..., 2, 1], -1.0, 1.0))
  tilt = np.arctan2(-r[..., 0, 1], r[..., 1, 1])
  rotation = np.arctan2(-r[..., 2, 0], r[..., 2, 2])
  if rotation.ndim:
    rotation = np.unwrap(rotation, axis=0)
    tilt = np.unwrap(tilt, axis=0)
  return tilt, list_, rotation


def apply_heading(skel: Skeleton, q, yaw: float) -> np.ndarray:
  """Rotates a whole motion (T, C) by `yaw` radians about the vertical axis through
  the origin (positive yaw turns +x towards -z, i.e. to the subject's left)."""
  q = np.array(q, dtype=np.float64)
  if yaw == 0.0:
    return q
  i = [skel.coordinate_index(n) for n in ('pelvis_tilt', 'pelvis_list', 'pelvis_rotation')]
  t = [skel.coordinate_index(n) for n in ('pelvis_tx', 'pelvis_ty', 'pelvis_tz')]
  r = rot_y(yaw) @ pelvis_matrix(q[:, i[0]], q[:, i[1]], q[:, i[2]])
  q[:, i[0]], q[:, i[1]], q[:, i[2]] = pelvis_angles(r)
  q[:, t] = q[:, t] @ rot_y(yaw).T
  return q


# ---- root planting (gait) ----------------------------------------------------

@dataclasses.dataclass
class PlantResult:
  q: np.ndarray  # (T, C) with pelvis_tx/ty/tz set
  contacts: np.ndarray  # (T, P, 3) world contact points of the planted motion
  ground_height: np.ndarray  # (T,) pelvis_ty that puts the lowest contact point on the floor


def hermite(y0, v0, y1, v1, duration, s):
  """Cubic Hermite on s in [0, 1] between (y0, v0) and (y1, v1) over `duration`."""
  h00 = 2 * s**3 - 3 * s**2 + 1
  h10 = s**3 - 2 * s**2 + s
  h01 = -2 * s**3 + 3 * s**2
  h11 = s**3 - s**2
  return h00 * y0 + h10 * duration * v0 + h01 * y1 + h11 * duration * v1


def segments(mask: np.ndarray) -> list[tuple[int, int]]:
  """[start, stop) index ranges of the True runs of a 1-D bool mask."""
  edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
  return list(zip(np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0]))


def plant_root(skel: Skeleton, q, fps: float, scales=None, stance=None,
               anchor_width: float = 0.002) -> PlantResult:
  """Root translation that keeps the feet on the floor without sliding.

  Args:
    skel: skeleton.
    q: (T, C) coordinates; pelvis_tx/ty/tz are ignored and recomputed.
    fps: frame rate (Hz).
    scales: (B, 3) subject body scales or None.
    stance: optional (T, 2) bool, which feet (right, left) may bear weight at each
      frame (default: both, always). Only their contact points are planted and
      anchored. Frames where neither may are flight (running, hops): there the
      vertical root follows a cubic Hermite curve that joins the planted heights
      and vertical velocities at the flight's ends (kept above the planted height,
      so feet never penetrate), and the horizontal velocity is interpolated
      linearly between the take-off and landing velocities.
    anchor_width: metres; contact points within a few widths of the lowest one
      share the weight (softmin over heights).

  Returns:
    PlantResult. Start position: pelvis_tx = pelvis_tz = 0 at frame 0.
  """
  q = np.array(q, dtype=np.float64)
  num_frames = q.shape[0]
  it = [skel.coordinate_index(n) for n in ('pelvis_tx', 'pelvis_ty', 'pelvis_tz')]
  q[:, it] = 0.0
  contacts = foot_contacts(skel)
  s = None if scales is None else check_scales(skel, scales)
  pos, rot = body_poses(skel, q, s)
  rel = contacts.world(pos, rot, s)  # (T, P, 3) with the root at the origin
  stance = np.ones((num_frames, 2), bool) if stance is None else np.asarray(stance, bool)
  if stance.shape != (num_frames, 2):
    raise ValueError(f'stance must have shape ({num_frames}, 2), got {stance.shape}')
  flight = ~stance.any(axis=1)
  # Points of feet that may bear weight; in flight frames all (only for the
  # planted height used at the flight's ends).
  allowed = stance[:, contacts.foot] | flight[:, None]  # (T, P)
  heights = np.where(allowed, rel[..., 1], np.inf)
  low = heights.min(axis=1)
  ground = -low
  weight = np.where(allowed, np.exp(-(heights - low[:, None]) / anchor_width), 0.0)
  weight /= weight.sum(axis=1, keepdims=True)
  # Horizontal: the root moves by minus the weighted displacement of the contacts.
  w_mid = 0.5 * (weight[1:] + weight[:-1])
  step = -np.einsum('tp,tpk->tk', w_mid, np.diff(rel[..., [0, 2]], axis=0))  # (T-1, 2)
  ty = ground.copy()
  dt = 1.0 / fps
  for a, b in segments(flight):
    # Grounded neighbours: a - 1 (take-off) and b (landing).
    pre, post = a - 1, b
    if pre >= 0:
      v_pre = (ground[pre] - ground[pre - 1]) / dt if pre >= 1 else 0.0
      step_pre = step[pre - 1] if pre >= 1 else step[min(b, num_frames - 2)]
    if post < num_frames:
      v_post = (ground[post + 1] - ground[post]) / dt if post + 1 < num_frames else 0.0
      step_post = step[post] if post < num_frames - 1 else step[max(pre - 1, 0)]
    idx = np.arange(a, b)
    if pre >= 0 and post < num_frames:
      span = (post - pre) * dt
      sv = (idx - pre) * dt / span
      ty[idx] = hermite(ground[pre], v_pre, ground[post], v_post, span, sv)
      for k in range(max(pre, 0), min(post, num_frames - 1)):
        w = (k + 0.5 - pre) / (post - pre)
        step[k] = (1 - w) * step_pre + w * step_post
    elif pre >= 0:  # flight to the end of the clip: ballistic from take-off
      tau = (idx - pre) * dt
      ty[idx] = ground[pre] + v_pre * tau - 0.5 * GRAVITY * tau**2
      step[pre:num_frames - 1] = step_pre
    elif post < num_frames:  # clip starts in flight: ballistic into the landing
      tau = (idx - post) * dt
      ty[idx] = ground[post] + v_post * tau - 0.5 * GRAVITY * tau**2
      step[:post] = step_post
  # In flight the bridge stays above the planted height of all points (no
  # penetration); feet marked as not bearing weight are not checked elsewhere
  # (swing clearance is the caller's business, see gait.py).
  ty = np.maximum(ty, ground)
  root = np.zeros((num_frames, 3))
  root[1:, 0] = np.cumsum(step[:, 0])
  root[1:, 2] = np.cumsum(step[:, 1])
  root[:, 1] = ty
  q[:, it] = root
  world = rel + root[:, None, :]
  return PlantResult(q=q, contacts=world, ground_height=ground)


# ---- leg inverse kinematics --------------------------------------------------

def log_rotation(r) -> np.ndarray:
  """(..., 3) rotation vectors of rotation matrices (..., 3, 3) (angle < pi)."""
  cos = np.clip((np.trace(r, axis1=-2, axis2=-1) - 1.0) / 2.0, -1.0, 1.0)
  angle = np.arccos(cos)
  vee = 0.5 * np.stack([r[..., 2, 1] - r[..., 1, 2], r[..., 0, 2] - r[..., 2, 0],
                        r[..., 1, 0] - r[..., 0, 1]], axis=-1)
  sin = np.sin(angle)
  factor = np.where(sin > 1e-9, angle / np.where(sin > 1e-9, sin, 1.0), 1.0)
  return vee * factor[..., None]


def leg_coordinate_indices(skel: Skeleton, with_mtp: bool = False) -> np.ndarray:
  """(2, 6) indices of LEG_COORDS (+ mtp_angle: (2, 7)) for the right and left leg."""
  names = LEG_COORDS + (('mtp_angle',) if with_mtp else ())
  return np.array([[skel.coordinate_index(f'{c}_{s}') for c in names] for s in SIDES])


def sync_knee_beta(skel: Skeleton, q: np.ndarray) -> np.ndarray:
  """Sets knee_angle_*_beta = knee_angle_* (the model's coupler) in place; returns q."""
  for s in SIDES:
    q[..., skel.coordinate_index(f'knee_angle_{s}_beta')] = q[..., skel.coordinate_index(
        f'knee_angle_{s}')]
  return q


@dataclasses.dataclass
class IKResult:
  q: np.ndarray  # (T, C)
  position_error: np.ndarray  # (T, 2) metres, target body origin vs target
  rotation_error: np.ndarray  # (T, 2) radians
  iterations: int


CALCN, TOES = 0, 1  # target bodies of `solve_leg_ik`


def solve_leg_ik(skel: Skeleton, q, target_rotations, target_positions, scales=None,
                 target_body=None, reference=None, reference_weight=None,
                 rotation_weight: float = 0.1, soft_limit: float = np.radians(6.0),
                 soft_limit_weight: float = 0.05, max_iterations: int = 40,
                 tolerance: float = 1e-7, range_margin: float = LEG_RANGE_MARGIN) -> IKResult:
  """Solves each leg's hip (3), knee, ankle, subtalar and MTP angles for a foot target.

  Per frame and leg the target is a pose of the calcaneus or of the toes body. The
  residual stacks the target body's origin error (metres), its orientation error
  times `rotation_weight` (metres/radian), `reference_weight * (x - reference)`
  for the 7 angles, and soft joint limits: `soft_limit_weight` times how far an
  angle is inside the last `soft_limit` radians of its range. With a calcaneus
  target the pose fixes 6 angles and the reference fixes mtp; with a toes target
  one combination (heel height vs knee/ankle) is left to the reference and the soft
  limits, e.g. the heel rises instead of over-flexing the ankle.

  Solved by Levenberg-Marquardt per frame and leg: Jacobians of the pose residual
  by forward differences of the chunked FK (8 poses per frame and iteration, both
  legs perturbed at once since they do not interact); a step is kept only if it
  lowers that frame's and leg's cost (else the damping grows); angles are clipped
  `range_margin` inside the coordinate ranges.

  Args:
    skel: skeleton.
    q: (T, C) initial coordinates: pelvis pose and every non-leg coordinate are kept;
      the leg coordinates are the starting guess.
    target_rotations: (T, 2, 3, 3) target body orientations (ground frame), right/left.
    target_positions: (T, 2, 3) target body origins (metres).
    scales: (B, 3) or None.
    target_body: (T, 2) CALCN (default) or TOES.
    reference: (T, 2, 7) reference angles (default: the initial guess).
    reference_weight: (T, 2, 7) metres/radian (default 1e-3; raise it to pin mtp).
    rotation_weight, soft_limit, soft_limit_weight: see above.
    max_iterations, tolerance: stop when every frame's cost changes less than
      `tolerance` (relative) or after `max_iterations`.
    range_margin: solutions are kept this far inside the coordinate ranges.

  Returns:
    IKResult; knee_angle_*_beta follows knee_angle_*.
  """
  q = sync_knee_beta(skel, np.array(q, dtype=np.float64))
  num_frames = q.shape[0]
  legs = leg_coordinate_indices(skel, with_mtp=True)  # (2, 7)
  n = legs.shape[1]
  bodies = np.array([[skel.body_index(f'{b}_{s}') for b in ('calcn', 'toes')] for s in SIDES])
  lo = skel.coordinate_ranges[legs, 0] + range_margin
  hi = skel.coordinate_ranges[legs, 1] - range_margin
  soft_lo, soft_hi = lo + soft_limit, hi - soft_limit
  betas = np.array([skel.coordinate_index(f'knee_angle_{s}_beta') for s in SIDES])
  knees = legs[:, 3]
  s = None if scales is None else check_scales(skel, scales)
  tr = np.asarray(target_rotations, dtype=np.float64)
  tp = np.asarray(target_positions, dtype=np.float64)
  body = np.zeros((num_frames, 2), int) if target_body is None else np.asarray(target_body, int)
  x = np.clip(q[:, legs], lo, hi)  # (T, 2, 7)
  ref = x.copy() if reference is None else np.asarray(reference, dtype=np.float64)
  w_ref = (np.full((num_frames, 2, n), 1e-3) if reference_weight is None
           else np.broadcast_to(np.asarray(reference_weight, dtype=np.float64),
                                (num_frames, 2, n)))
  h = 1e-6  # finite-difference step (radians)
  sel = bodies[np.arange(2)[None, :], body]  # (T, 2) body index of each target

  def pose_residual(pos, rot):  # (T, K, B, 3), (T, K, B, 3, 3) -> (T, K, 2, 6)
    idx = sel[:, None, :]
    p = np.take_along_axis(pos, idx[..., None], axis=2)
    r = np.take_along_axis(rot, idx[..., None, None], axis=2)
    err_p = p - tp[:, None]
    err_r = log_rotation(np.swapaxes(tr[:, None], -1, -2) @ r)
    err_r = np.einsum('tsij,tksj->tksi', tr, err_r)  # in the ground frame
    return np.concatenate([err_p, rotation_weight * err_r], axis=-1)

  def extra_residual(xx):  # (T, 2, 7) -> residual (T, 2, 14) and its diagonal Jacobian
    over = np.maximum(xx - soft_hi, 0.0) - np.maximum(soft_lo - xx, 0.0)
    r = np.concatenate([w_ref * (xx - ref), soft_limit_weight * over], axis=-1)
    d_over = ((xx > soft_hi) | (xx < soft_lo)).astype(np.float64)
    return r, np.concatenate([w_ref, soft_limit_weight * d_over], axis=-1)

  lam = np.full((num_frames, 2), 1e-3)
  cost = None
  jac = e_all = None
  candidate = x
  iterations = 0
  for iterations in range(1, max_iterations + 1):
    batch = np.repeat(q[:, None, :], n + 1, axis=1)
    batch[:, :, legs] = candidate[:, None]
    for k in range(n):  # base + perturbations, both legs at once
      batch[:, k + 1, legs[:, k]] += h
    batch[..., betas] = batch[..., knees]
    pos, rot = body_poses(skel, batch, s)
    e = pose_residual(pos, rot)  # (T, n+1, 2, 6)
    e_x, d_x = extra_residual(candidate)
    e_new = np.concatenate([e[:, 0], e_x], axis=-1)  # (T, 2, 20)
    new_cost = np.sum(e_new**2, axis=-1)
    accept = np.ones_like(new_cost, bool) if cost is None else new_cost < cost
    lam = np.where(accept, np.maximum(lam / 3.0, 1e-7), lam * 8.0)
    x = np.where(accept[..., None], candidate, x)
    j_pose = np.transpose((e[:, 1:] - e[:, :1]) / h, (0, 2, 3, 1))  # (T, 2, 6, n)
    j_extra = np.zeros((num_frames, 2, 2 * n, n))
    idx = np.arange(n)
    j_extra[:, :, idx, idx] = d_x[..., :n]
    j_extra[:, :, n + idx, idx] = d_x[..., n:]
    j_new = np.concatenate([j_pose, j_extra], axis=2)
    jac = j_new if jac is None else np.where(accept[..., None, None], j_new, jac)
    e_all = e_new if e_all is None else np.where(accept[..., None], e_new, e_all)
    old = cost
    cost = new_cost if cost is None else np.where(accept, new_cost, cost)
    if old is not None and np.all(accept) and np.all(
        (cost < 1e-20) | (np.abs(old - cost) <= tolerance * cost)):
      break
    jtj = np.einsum('tsri,tsrj->tsij', jac, jac)
    jte = np.einsum('tsri,tsr->tsi', jac, e_all)
    diag = np.einsum('tsii->tsi', jtj)
    a = jtj + (lam[..., None] * (diag + 1e-9))[..., None] * np.eye(n)
    delta = -np.linalg.solve(a, jte[..., None])[..., 0]  # (T, 2, n)
    # Active set: angles at a bound that the step pushes further out are frozen and
    # the step is re-solved for the others (a clipped step would stall there).
    blocked = ((x >= hi - 1e-9) & (delta > 0)) | ((x <= lo + 1e-9) & (delta < 0))
    if blocked.any():
      a = a + (1e9 * blocked)[..., None] * np.eye(n)
      delta = -np.linalg.solve(a, jte[..., None])[..., 0]
    delta = np.clip(delta, -0.3, 0.3)  # at most ~17 degrees per step
    candidate = np.clip(x + delta, lo, hi)
  q[:, legs] = x
  q[:, betas] = q[:, knees]
  pos, rot = body_poses(skel, q, s)
  p = pos[np.arange(num_frames)[:, None], sel]
  r = rot[np.arange(num_frames)[:, None], sel]
  pos_err = np.linalg.norm(p - tp, axis=-1)
  rot_err = np.linalg.norm(log_rotation(np.swapaxes(tr, -1, -2) @ r), axis=-1)
  return IKResult(q=q, position_error=pos_err, rotation_error=rot_err, iterations=iterations)


# ---- subject geometry ----------------------------------------------------------

REACH_KNEE = np.radians(4.0)  # knee flexion at which a leg counts as fully extended


@dataclasses.dataclass(frozen=True, eq=False)
class SubjectGeometry:
  """Leg and foot geometry of one (scaled) subject, from FK of reference poses.

  Points "in calcn" are in the calcaneus body frame of the scaled subject; index 0 is
  the right side, 1 the left.
  """

  standing_height: float  # pelvis_ty that puts the soles on the floor in the zero pose
  hip_in_pelvis: np.ndarray  # (2, 3) hip joint centres in the pelvis frame
  talus_in_calcn: np.ndarray  # (2, 3) ankle joint centre (zero subtalar angle)
  heel_in_calcn: np.ndarray  # (2, 3) middle of the heel's sole points
  ball_in_calcn: np.ndarray  # (2, 3) middle of the metatarsal heads' sole points
  mtp_center_in_calcn: np.ndarray  # (2, 3) MTP joint centre
  mtp_axis_in_calcn: np.ndarray  # (2, 3) unit MTP joint axis (+ = toe flexion)
  toes_in_calcn: np.ndarray  # (2, 3) toes body origin (zero mtp angle)
  sole_in_calcn: np.ndarray  # (2, 6, 3) the foot's contact points with mtp = 0
  sole_on_toes: np.ndarray  # (6,) bool, which contact points ride on the toes
  thigh_length: np.ndarray  # (2,) hip centre to tibia origin (zero pose)
  shank_length: np.ndarray  # (2,) tibia origin to ankle centre
  knee_grid: np.ndarray  # (K,) knee angles (rad)
  hip_to_ankle: np.ndarray  # (2, K) hip-centre-to-ankle-centre distance at each knee angle
  leg_reach: np.ndarray  # (2,) hip_to_ankle at REACH_KNEE

  def sole_points(self, rotations, positions, mtp) -> np.ndarray:
    """(..., 2, 6, 3) contact points of calcn poses (..., 2, 3, 3), (..., 2, 3) and
    MTP angles (..., 2)."""
    rel = self.sole_in_calcn - self.mtp_center_in_calcn[:, None]  # (2, 6, 3)
    toes = axis_rotation(self.mtp_axis_in_calcn, np.asarray(mtp))  # (..., 2, 3, 3)
    bent = self.mtp_center_in_calcn[:, None] + np.einsum('...sij,skj->...ski', toes, rel)
    local = np.where(self.sole_on_toes[:, None], bent, self.sole_in_calcn)
    return positions[..., None, :] + np.einsum('...sij,...skj->...ski', rotations, local)

  def hip_to_ankle_at(self, knee) -> np.ndarray:
    """(..., 2) hip-to-ankle distances for knee angles (..., 2) (radians)."""
    knee = np.asarray(knee, dtype=np.float64)
    return np.stack([np.interp(knee[..., k], self.knee_grid, self.hip_to_ankle[k])
                     for k in range(2)], axis=-1)


def subject_geometry(skel: Skeleton, scales=None) -> SubjectGeometry:
  """Geometry of the subject `scales` (B, 3) (None: the unscaled model)."""
  s = check_scales(skel, scales)
  grid = np.radians(np.arange(0.0, 121.0, 2.0))
  q = np.zeros((1 + len(grid), skel.num_coordinates))
  for side in SIDES:
    q[1:, skel.coordinate_index(f'knee_angle_{side}')] = grid
  sync_knee_beta(skel, q)
  pos, rot = body_poses(skel, q, s)
  contacts = foot_contacts(skel)
  pts = contacts.world(pos[0], rot[0], s)
  calcn = [skel.body_index(f'calcn_{x}') for x in SIDES]
  talus = [skel.body_index(f'talus_{x}') for x in SIDES]
  tibia = [skel.body_index(f'tibia_{x}') for x in SIDES]
  toes = [skel.body_index(f'toes_{x}') for x in SIDES]
  femur = [skel.body_index(f'femur_{x}') for x in SIDES]
  pelvis = skel.body_index('pelvis')

  def in_calcn(points, side):
    return (points - pos[0, calcn[side]]) @ rot[0, calcn[side]]

  sole = np.stack([in_calcn(pts[contacts.foot == k], k) for k in (0, 1)])
  names = [n[2:] for n in contacts.names[:6]]
  on_toes = np.array([skel.body_names[b].startswith('toes') for b in contacts.bodies[:6]])
  centers, axes = [], []
  for k, side in enumerate(SIDES):
    joint = skel.joints[skel.joint_index(f'mtp_{side}')]
    centers.append(joint.parent_offset @ s[calcn[k]])
    axes.append(joint.parent_rotation @ np.asarray(joint.rotations[0].axis, dtype=np.float64))
  distances = np.linalg.norm(pos[1:, femur] - pos[1:, talus], axis=-1).T  # (2, K)
  return SubjectGeometry(
      standing_height=float(-pts[:, 1].min()),
      hip_in_pelvis=np.einsum('ji,sj->si', rot[0, pelvis], pos[0, femur] - pos[0, pelvis]),
      talus_in_calcn=np.stack([in_calcn(pos[0, talus[k]], k) for k in (0, 1)]),
      heel_in_calcn=0.5 * (sole[:, names.index('heel_lat')] + sole[:, names.index('heel_med')]),
      ball_in_calcn=0.5 * (sole[:, names.index('mt1')] + sole[:, names.index('mt5')]),
      mtp_center_in_calcn=np.array(centers),
      mtp_axis_in_calcn=np.array(axes) / np.linalg.norm(axes, axis=-1, keepdims=True),
      toes_in_calcn=np.stack([in_calcn(pos[0, toes[k]], k) for k in (0, 1)]),
      sole_in_calcn=sole,
      sole_on_toes=on_toes,
      thigh_length=np.linalg.norm(pos[0, femur] - pos[0, tibia], axis=-1),
      shank_length=np.linalg.norm(pos[0, tibia] - pos[0, talus], axis=-1),
      knee_grid=grid,
      hip_to_ankle=distances,
      leg_reach=np.array([np.interp(REACH_KNEE, grid, distances[k]) for k in (0, 1)]),
  )


def lower_envelope(x, width: int) -> np.ndarray:
  """A smooth curve below x (approximately): running min over 2*width+1 frames,
  then a Gaussian of standard deviation width/2 frames."""
  x = np.asarray(x, dtype=np.float64)
  if width <= 0:
    return x.copy()
  eroded = ndimage.minimum_filter1d(x, size=2 * width + 1, mode='nearest')
  return ndimage.gaussian_filter1d(eroded, sigma=width / 2.0, mode='nearest')


def smooth_envelope(x, width: int) -> np.ndarray:
  """A smooth curve above x (approximately): running max over 2*width+1 frames, then
  a Gaussian of standard deviation width/2 frames."""
  x = np.asarray(x, dtype=np.float64)
  if width <= 0:
    return x.copy()
  dilated = ndimage.maximum_filter1d(x, size=2 * width + 1, mode='nearest')
  return ndimage.gaussian_filter1d(dilated, sigma=width / 2.0, mode='nearest')


def lift_out_of_floor(skel: Skeleton, q, scales=None, fps: float = 60.0,
                      width_s: float = 0.05) -> tuple[np.ndarray, float]:
  """Raises pelvis_ty where a contact point would be below the floor (IK residuals at
  range limits), by a smooth envelope of the depth. Returns (q, largest raise)."""
  q = np.array(q, dtype=np.float64)
  depth = np.maximum(0.0, -contact_points(skel, q, scales)[..., 1].min(axis=-1))
  if depth.max() <= 0.0:
    return q, 0.0
  raise_by = smooth_envelope(depth, width=max(1, int(round(width_s * fps))))
  raise_by = np.maximum(raise_by, depth)  # the envelope is only approximately above
  q[:, skel.coordinate_index('pelvis_ty')] += raise_by
  return q, float(raise_by.max())

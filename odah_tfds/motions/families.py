"""Standing, stepping and jumping movement families (everything but gait).

Each family samples its parameters (`sample_*`) and builds a clip (`make_*`) as:

* a design of the upper body, the pelvis orientation and the legs' starting
  guesses from keyframes (minimum-jerk between postures, `curves.keyframe_timeline`)
  with values set for this project from the exercise descriptions cited in README.md;
* foot targets (calcaneus poses): flat on the floor at fixed places while a foot
  bears weight, heel raised about the MTP axis (toes kept flat) where the movement
  calls for it, smooth lifted paths in between (steps, hops);
* a pelvis position that the legs can reach, usually computed from a designed knee
  and ankle angle with a two-segment sagittal leg (`_hip_from_leg`), so the knee
  follows the movement's normative pattern;
* legs by IK (`kinematics.solve_leg_ik`): both feet reach their targets exactly,
  which is what keeps them planted (no skating) and on the floor.

The builders take a `Context` and the sampled parameters and return (q (T, C)
radians/metres, info dict with `flight` (T,) bool for airborne frames).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from odah_tfds.motions import curves, kinematics
from odah_tfds.motions.gait import (heel_rise_needed, hermite_fill, leg_height,
                                    stance_pose_sides)

GRAVITY = kinematics.GRAVITY


@dataclasses.dataclass
class Context:
  """What a family builder needs: skeleton, subject, time axis and randomness."""

  skel: object
  scales: np.ndarray | None
  geom: kinematics.SubjectGeometry
  fps: float
  t: np.ndarray  # (T,) seconds from 0

  @property
  def num_frames(self) -> int:
    return len(self.t)

  def index(self, name: str) -> int:
    return self.skel.coordinate_index(name)


# ---- shared helpers ---------------------------------------------------------------

def _u(rng, lo, hi) -> float:
  return float(rng.uniform(lo, hi))


def _noise_params(rng, amount=(0.5, 1.5)) -> dict:
  return dict(noise_deg=_u(rng, *amount), noise_seed=int(rng.integers(2**31)))


def _stand_params(rng, width=(0.12, 0.25), toe_out=(0.0, 12.0)) -> dict:
  """Stance width (distance between heel centres, m) and toe-out (deg per foot)."""
  return dict(stance_width=_u(rng, *width), toe_out_deg=_u(rng, *toe_out),
              pro_sup_deg=_u(rng, 60.0, 90.0), arm_abduction_deg=_u(rng, 3.0, 10.0),
              elbow_deg=_u(rng, 5.0, 20.0), trunk_lean_deg=_u(rng, -4.0, 2.0))


def _base_degrees(ctx: Context, params: dict) -> np.ndarray:
  """(T, C) degrees: relaxed standing upper body (arms by the sides, palms towards
  the thighs), everything else zero."""
  deg = np.zeros((ctx.num_frames, ctx.skel.num_coordinates))
  for s in kinematics.SIDES:
    deg[:, ctx.index(f'arm_add_{s}')] = -params['arm_abduction_deg']
    deg[:, ctx.index(f'elbow_flex_{s}')] = params['elbow_deg']
    deg[:, ctx.index(f'pro_sup_{s}')] = params['pro_sup_deg']
    deg[:, ctx.index(f"knee_angle_{s}")] = 7.0
  deg[:, ctx.index('lumbar_extension')] = params['trunk_lean_deg']
  return deg


def _add_noise(ctx: Context, deg: np.ndarray, params: dict, names=None) -> None:
  """Adds slow style perturbations (degrees) to the upper body and pelvis orientation."""
  if names is None:
    names = ['pelvis_tilt', 'pelvis_list', 'pelvis_rotation', 'lumbar_extension',
             'lumbar_bending', 'lumbar_rotation'] + [
                 f'{c}_{s}' for s in kinematics.SIDES
                 for c in ('arm_flex', 'arm_add', 'arm_rot', 'elbow_flex', 'wrist_flex',
                           'wrist_dev', 'pro_sup')]
  rng = np.random.default_rng(params['noise_seed'])
  idx = [ctx.index(n) for n in names]
  deg[:, idx] += curves.smooth_noise(rng, ctx.t, len(idx), params['noise_deg'])


def _flat_feet(ctx: Context, width: float, toe_out_deg: float, x=0.0, z_shift=0.0):
  """Flat-foot calcn poses R (2, 3, 3), p (2, 3) with the heels at x (relative to the
  zero-pose heel position, so x = 0 puts the ankles under the hips) and at
  z = +-width / 2 (+ z_shift); toe-out turns each foot's toes outwards."""
  geom = ctx.geom
  heel_x0 = geom.hip_in_pelvis[:, 0] - (geom.talus_in_calcn[:, 0] - geom.heel_in_calcn[:, 0])
  xz = np.stack([heel_x0 + x, np.array([0.5, -0.5]) * width + z_shift], -1)
  yaw = np.radians(toe_out_deg) * np.array([-1.0, 1.0])
  r, p, _ = stance_pose_sides(geom, np.array([0, 1]), xz, yaw, np.zeros(2))
  return r, p


def _ankle(geom, r, p) -> np.ndarray:
  """(..., 2, 3) ankle joint centres of calcn poses (..., 2, 3, 3), (..., 2, 3)."""
  return p + np.einsum('...sij,sj->...si', r, geom.talus_in_calcn)


def _hip_from_leg(geom, ankle, yaw, knee, lean, hip_z=None):
  """(T, 2, 3) hip joint centres from a two-segment leg in each foot's sagittal plane.

  Args:
    ankle: (T, 2, 3) ankle centres.
    yaw: (2,) or (T, 2) foot headings (rad).
    knee: (T, 2) knee flexion (rad).
    lean: (T, 2) forward lean of the shank from vertical (rad) = ankle dorsiflexion
      for a flat foot.
    hip_z: optional (T, 2) lateral hip positions; the leg is then tilted sideways to
      reach them (its sagittal projection shortens accordingly).
  """
  thigh, shank = geom.thigh_length, geom.shank_length
  fwd = np.stack([np.cos(yaw), np.zeros_like(yaw), -np.sin(yaw)], -1)
  fwd = np.broadcast_to(fwd, ankle.shape)
  along = shank * np.sin(lean) + thigh * np.sin(lean - knee)
  up = shank * np.cos(lean) + thigh * np.cos(lean - knee)
  hip = ankle + along[..., None] * fwd
  if hip_z is None:
    hip[..., 1] = ankle[..., 1] + up
  else:
    dz = hip_z - hip[..., 2]
    hip[..., 2] = hip_z
    hip[..., 1] = ankle[..., 1] + np.sqrt(np.maximum(up**2 - dz**2, 1e-6))
  return hip


def _pelvis_from_hips(geom, hips, r_pel) -> np.ndarray:
  """(T, 3) pelvis origin whose hip centres best match `hips` (T, 2, 3) (mean)."""
  rel = np.einsum('tij,sj->tsi', r_pel, geom.hip_in_pelvis)
  return (hips - rel).mean(axis=1)


def _pelvis_matrix(ctx: Context, q) -> np.ndarray:
  return kinematics.pelvis_matrix(q[:, ctx.index('pelvis_tilt')], q[:, ctx.index('pelvis_list')],
                                  q[:, ctx.index('pelvis_rotation')])


def _solve(ctx: Context, q_design, target_r, target_p, mtp=None, body=None,
           mtp_weight=0.05):
  """Legs by IK for calcn (or toes) targets; pelvis and upper body from q_design.

  Returns q (T, C) with knee beta synced, lifted out of the floor if an IK residual
  would leave a sole point below it, and the IK result."""
  legs7 = kinematics.leg_coordinate_indices(ctx.skel, with_mtp=True)
  reference = q_design[:, legs7].copy()
  if mtp is not None:
    reference[..., 6] = mtp
    q_design = q_design.copy()
    q_design[:, legs7[:, 6]] = mtp
  weight = np.full(reference.shape, 5e-4)
  weight[..., 6] = np.broadcast_to(mtp_weight, weight.shape[:-1] + (1,))[..., 0]
  result = kinematics.solve_leg_ik(ctx.skel, q_design, target_r, target_p, ctx.scales,
                                   target_body=body, reference=reference,
                                   reference_weight=weight, soft_limit_weight=0.01)
  q = kinematics.sync_knee_beta(ctx.skel, result.q)
  q, lifted = kinematics.lift_out_of_floor(ctx.skel, q, ctx.scales, ctx.fps)
  return q, result, lifted


def _reps(total: float, rep: float, rng, pause=(0.2, 0.8)):
  """Start times of repetitions of length `rep` with random pauses, filling `total`
  seconds (at least one), and the first start (a short rest first)."""
  starts = []
  t0 = _u(rng, 0.1, 0.6)
  while not starts or t0 + rep <= total:
    starts.append(t0)
    t0 += rep + _u(rng, *pause)
  return starts


def _rep_profile(t, starts, rep, keys) -> np.ndarray:
  """Sum over repetitions of a keyframe profile (times as fractions of `rep`,
  values), minimum-jerk between keys, zero outside the repetitions."""
  out = np.zeros_like(t)
  k_t = np.array([k[0] for k in keys]) * rep
  k_v = np.array([k[1] for k in keys], dtype=np.float64)
  for t0 in starts:
    inside = (t >= t0) & (t <= t0 + rep)
    out[inside] += curves.keyframe_timeline(k_t, k_v, t[inside] - t0)
  return out


def _reach_lower(ctx, deg, pelvis, target_r, target_p, knee_deg=8.0):
  """Pelvis (T, 3) lowered (smoothly) where a leg could not reach its calcn target
  with `knee_deg` of knee flexion."""
  geom = ctx.geom
  r_pel = _pelvis_matrix(ctx, np.radians(deg))
  rel = np.einsum('tij,sj->tsi', r_pel, geom.hip_in_pelvis)
  hip_xz = pelvis[:, None, [0, 2]] + rel[..., [0, 2]]
  ankle = _ankle(geom, target_r, target_p)
  reach = geom.hip_to_ankle_at(np.full((ctx.num_frames, 2), np.radians(knee_deg)))
  horiz2 = np.sum((hip_xz - ankle[..., [0, 2]])**2, axis=-1)
  y_max = (ankle[..., 1] + np.sqrt(np.maximum(reach**2 - horiz2, 1e-6)) - rel[..., 1]).min(1)
  drop = np.maximum(0.0, pelvis[:, 1] - y_max)
  out = pelvis.copy()
  out[:, 1] -= kinematics.smooth_envelope(drop, width=max(1, int(round(0.08 * ctx.fps))))
  return out


def _finish(ctx, deg, pelvis, target_r, target_p, mtp=None, body=None, flight=None,
            mtp_weight=0.05, extra=None, reach_knee_deg=8.0):
  """Radians, pelvis translation (lowered where a leg could not reach), IK, info."""
  if reach_knee_deg is not None:
    pelvis = _reach_lower(ctx, deg, pelvis, target_r, target_p, reach_knee_deg)
  q = np.radians(deg)
  q[:, [ctx.index(n) for n in ('pelvis_tx', 'pelvis_ty', 'pelvis_tz')]] = pelvis
  q, result, lifted = _solve(ctx, q, target_r, target_p, mtp=mtp, body=body,
                             mtp_weight=mtp_weight)
  info = dict(flight=np.zeros(ctx.num_frames, bool) if flight is None else flight,
              ik_position_error=float(result.position_error.max()),
              ik_rotation_error=float(result.rotation_error.max()), lifted=lifted)
  info.update(extra or {})
  return q, info


def _standing_pelvis(ctx, params, r_feet, p_feet, deg, knee_deg=7.0, shift_x=None,
                     shift_z=None, drop=None):
  """Pelvis (T, 3) for a quiet stance on flat feet: legs with `knee_deg` of flexion,
  optional designed shifts (T,) in x / z and extra drop (T,) in y."""
  geom = ctx.geom
  num = ctx.num_frames
  ankle = _ankle(geom, r_feet, p_feet)  # (2, 3)
  ankle = np.broadcast_to(ankle, (num, 2, 3))
  r_pel = _pelvis_matrix(ctx, np.radians(deg))
  rel = np.einsum('tij,sj->tsi', r_pel, geom.hip_in_pelvis)
  x = np.zeros(num) if shift_x is None else shift_x
  z = np.zeros(num) if shift_z is None else shift_z
  hip_xz = np.stack([x, z], -1)[:, None] + rel[..., [0, 2]]
  reach = geom.hip_to_ankle_at(np.full((num, 2), np.radians(knee_deg)))
  horiz2 = np.sum((hip_xz - ankle[..., [0, 2]])**2, axis=-1)
  y = (ankle[..., 1] + np.sqrt(np.maximum(reach**2 - horiz2, 1e-6)) - rel[..., 1]).min(axis=1)
  if drop is not None:
    y = y - drop
  return np.stack([x, y, z], -1)


def _roll_without_slip(ctx, tr, tp, mtp, contact, width=1e-4):
  """Makes feet that pivot (heel rising about the MTP axis) roll without slipping.

  For non-uniformly scaled feet the lowest sole point may sit on the calcaneus
  (metatarsal heads) rather than on the toes and would then move while the heel
  rises. Within each contact run of each foot, the poses (T, 2, 3, 3), (T, 2, 3) are
  translated so that the lowest sole points (softmin over heights, `width` metres)
  keep their horizontal place and the lowest point stays on the floor. Modifies tp
  in place."""
  geom = ctx.geom
  pts = geom.sole_points(tr, tp, mtp)  # (T, 2, 6, 3)
  num = len(tp)
  for f in (0, 1):
    shift_all = np.full((num, 3), np.nan)
    for a, b in kinematics.segments(contact[:, f]):
      seg = pts[a:b, f]
      low = seg[..., 1].min(axis=1)
      w = np.exp(-(seg[..., 1] - low[:, None]) / width)
      w /= w.sum(axis=1, keepdims=True)
      w_mid = 0.5 * (w[1:] + w[:-1])
      step = -np.einsum('tk,tkc->tc', w_mid, np.diff(seg[..., [0, 2]], axis=0))
      shift = np.concatenate([np.zeros((1, 2)), np.cumsum(step, axis=0)])
      shift_all[a:b] = np.stack([shift[:, 0], -low, shift[:, 1]], -1)
    # Between contacts the shift blends back (minimum jerk) to the next contact's.
    for a, b in kinematics.segments(~contact[:, f]):
      before = shift_all[a - 1] if a > 0 else np.zeros(3)
      after = shift_all[b] if b < num else np.zeros(3)
      s_ = curves.minimum_jerk((np.arange(a, b) - a + 1) / (b - a + 1))[:, None]
      shift_all[a:b] = before * (1 - s_) + after * s_
    tp[:, f] += shift_all
  return tp


def _static_feet(ctx, r, p):
  num = ctx.num_frames
  return np.broadcast_to(r, (num, 2, 3, 3)).copy(), np.broadcast_to(p, (num, 2, 3)).copy()


def _sway(ctx, params, amp=0.01):
  """Slow postural sway of the pelvis (x, z) in metres."""
  rng = np.random.default_rng(params['noise_seed'] + 1)
  return curves.smooth_noise(rng, ctx.t, 2, amp, min_hz=0.05, max_hz=0.3)


# ---- squat --------------------------------------------------------------------------

def sample_squat(rng) -> dict:
  p = _stand_params(rng, width=(0.25, 0.45), toe_out=(5.0, 25.0))
  p.update(depth_knee_deg=_u(rng, 60.0, 110.0), rep_s=_u(rng, 2.0, 3.5),
           bottom_pause=_u(rng, 0.0, 0.25), max_dorsiflexion_deg=_u(rng, 14.0, 18.0),
           trunk_ratio=_u(rng, 0.25, 0.45), lumbar_flexion_deg=_u(rng, 0.0, 15.0),
           arms=str(rng.choice(['forward', 'hips', 'crossed'])), **_noise_params(rng))
  return p


def _arm_pose(deg, ctx, style, amount):
  """Adds an arm posture (deg), scaled by amount (T,) in [0, 1] for 'forward'."""
  for s in kinematics.SIDES:
    i = ctx.index
    if style == 'forward':
      deg[:, i(f'arm_flex_{s}')] += 85.0 * amount
      deg[:, i(f'arm_add_{s}')] += 8.0 * amount
      deg[:, i(f'elbow_flex_{s}')] *= 1.0 - amount
    elif style == 'hips':
      deg[:, i(f'arm_add_{s}')] = -35.0
      deg[:, i(f'arm_flex_{s}')] = -10.0
      deg[:, i(f'arm_rot_{s}')] = 30.0
      deg[:, i(f'elbow_flex_{s}')] = 95.0
    elif style == 'crossed':
      deg[:, i(f'arm_flex_{s}')] = 45.0
      deg[:, i(f'arm_add_{s}')] = 25.0
      deg[:, i(f'arm_rot_{s}')] = 40.0
      deg[:, i(f'elbow_flex_{s}')] = 120.0
  return deg


def make_squat(ctx: Context, params: dict):
  rng = np.random.default_rng(params['noise_seed'])
  total = ctx.t[-1] + 1.0 / ctx.fps
  rep = params['rep_s']
  starts = _reps(total, rep, rng)
  hold = params['bottom_pause'] / rep
  down = 0.5 - hold / 2
  # Depth profile 0 -> 1 -> 0 over a repetition.
  depth = _rep_profile(ctx.t, starts, rep, [(0.0, 0.0), (down, 1.0), (down + hold, 1.0),
                                           (1.0, 0.0)])
  knee_deg = 7.0 + (params["depth_knee_deg"] - 7.0) * depth
  knee = np.radians(knee_deg)
  # The shank leans forward up to the subject's dorsiflexion (heels down), the
  # pelvis tilts forward (trunk lean) so the mass stays over the feet, keeping hip
  # flexion (thigh angle + tilt) below 112 degrees. Soft limits keep it smooth.
  lean_deg = curves.soft_clip(0.3 * knee_deg, -90.0, params['max_dorsiflexion_deg'], 3.0)
  lean = np.radians(lean_deg)
  tilt = curves.soft_clip(params["trunk_ratio"] * (knee_deg - 7.0), -90.0,
                          np.maximum(112.0 - (knee_deg - lean_deg), 0.0) + 1e-3, 4.0)
  deg = _base_degrees(ctx, params)
  deg[:, ctx.index('pelvis_tilt')] = -tilt
  deg[:, ctx.index('lumbar_extension')] += -params['lumbar_flexion_deg'] * depth
  _arm_pose(deg, ctx, params['arms'], depth)
  _add_noise(ctx, deg, params)
  r_feet, p_feet = _flat_feet(ctx, params['stance_width'], params['toe_out_deg'])
  tr, tp = _static_feet(ctx, r_feet, p_feet)
  ankle = _ankle(ctx.geom, tr, tp)
  yaw = np.radians(params['toe_out_deg']) * np.array([-1.0, 1.0])
  r_pel = _pelvis_matrix(ctx, np.radians(deg))
  rel = np.einsum('tij,sj->tsi', r_pel, ctx.geom.hip_in_pelvis)
  # The hips stay at pelvis width: the legs tilt sideways towards them.
  hips = _hip_from_leg(ctx.geom, ankle, yaw, np.stack([knee, knee], -1),
                       np.stack([lean, lean], -1), hip_z=rel[..., 2])
  pelvis = _pelvis_from_hips(ctx.geom, hips, r_pel)
  for s in kinematics.SIDES:
    deg[:, ctx.index(f'knee_angle_{s}')] = np.degrees(knee)
    deg[:, ctx.index(f'hip_flexion_{s}')] = np.degrees(knee) * 0.9
    deg[:, ctx.index(f'ankle_angle_{s}')] = np.degrees(lean)
  return _finish(ctx, deg, pelvis, tr, tp)


# ---- sit-to-stand ---------------------------------------------------------------------

def sample_sit_to_stand(rng) -> dict:
  p = _stand_params(rng, width=(0.15, 0.32), toe_out=(0.0, 15.0))
  p.update(seat_knee_deg=_u(rng, 85.0, 105.0), rise_s=_u(rng, 1.2, 2.2), sit_s=_u(rng, 1.4, 2.4),
           trunk_flexion_deg=_u(rng, 25.0, 45.0), seated_dorsiflexion_deg=_u(rng, 2.0, 10.0),
           stand_s=_u(rng, 0.4, 1.2), seated_s=_u(rng, 0.4, 1.2),
           start_seated=bool(rng.integers(2)),
           arms=str(rng.choice(['crossed', 'free', 'forward'])), **_noise_params(rng))
  return p


def make_sit_to_stand(ctx: Context, params: dict):
  """Alternates seated -> standing -> seated (no chair is modelled: the seated
  posture has the thighs roughly horizontal, hips at knee height). The rise has
  the classic flexion-momentum phase: the trunk tilts forward before seat-off
  and extends while the knees extend (Schenkman et al. 1990)."""
  t = ctx.t
  # Build the sequence of (time, seated 1 / standing 0, trunk 0..1) keys.
  keys_t, keys_sit, keys_trunk = [], [], []
  now, seated = 0.0, params['start_seated']
  total = t[-1] + 1.0 / ctx.fps
  keys_t.append(0.0)
  keys_sit.append(1.0 if seated else 0.0)
  keys_trunk.append(0.0)
  while now < total:
    hold = params['seated_s'] if seated else params['stand_s']
    move = params['rise_s'] if seated else params['sit_s']
    now += hold
    keys_t.append(now)
    keys_sit.append(1.0 if seated else 0.0)
    keys_trunk.append(0.0)
    # Trunk peaks near seat-off (40 % of the rise) or before touch-down (60 % of the sit).
    frac = 0.4 if seated else 0.6
    keys_t.append(now + frac * move)
    keys_sit.append(0.8 if seated else 0.2)
    keys_trunk.append(1.0)
    now += move
    seated = not seated
    keys_t.append(now)
    keys_sit.append(1.0 if seated else 0.0)
    keys_trunk.append(0.0)
  sit = curves.keyframe_timeline(keys_t, keys_sit, t)
  trunk = curves.keyframe_timeline(keys_t, keys_trunk, t)
  knee_deg = 7.0 + (params['seat_knee_deg'] - 7.0) * sit
  lean_deg = params['seated_dorsiflexion_deg'] * sit + 8.0 * trunk * sit
  deg = _base_degrees(ctx, params)
  tilt = params['trunk_flexion_deg'] * (0.7 * trunk + 0.15 * sit)
  deg[:, ctx.index('pelvis_tilt')] = -tilt
  deg[:, ctx.index('lumbar_extension')] += -0.3 * params['trunk_flexion_deg'] * trunk
  if params['arms'] == 'forward':
    _arm_pose(deg, ctx, 'forward', 0.5 * trunk + 0.3 * sit)
  elif params['arms'] == 'crossed':
    _arm_pose(deg, ctx, 'crossed', sit)
  else:  # free arms: a small forward swing with the trunk
    for s in kinematics.SIDES:
      deg[:, ctx.index(f'arm_flex_{s}')] += 30.0 * trunk
      deg[:, ctx.index(f'elbow_flex_{s}')] += 20.0 * sit
  _add_noise(ctx, deg, params)
  r_feet, p_feet = _flat_feet(ctx, params['stance_width'], params['toe_out_deg'], x=0.05)
  tr, tp = _static_feet(ctx, r_feet, p_feet)
  yaw = np.radians(params['toe_out_deg']) * np.array([-1.0, 1.0])
  r_pel = _pelvis_matrix(ctx, np.radians(deg))
  rel = np.einsum('tij,sj->tsi', r_pel, ctx.geom.hip_in_pelvis)
  knee, lean = np.radians(knee_deg), np.radians(lean_deg)
  hips = _hip_from_leg(ctx.geom, _ankle(ctx.geom, tr, tp), yaw, np.stack([knee, knee], -1),
                       np.stack([lean, lean], -1), hip_z=rel[..., 2])
  pelvis = _pelvis_from_hips(ctx.geom, hips, r_pel)
  for s in kinematics.SIDES:
    deg[:, ctx.index(f'knee_angle_{s}')] = knee_deg
    deg[:, ctx.index(f'hip_flexion_{s}')] = knee_deg - lean_deg + tilt
    deg[:, ctx.index(f'ankle_angle_{s}')] = lean_deg
  return _finish(ctx, deg, pelvis, tr, tp)


# ---- lunge -------------------------------------------------------------------------------

def sample_lunge(rng) -> dict:
  p = _stand_params(rng, width=(0.14, 0.24), toe_out=(0.0, 10.0))
  p.update(front_knee_deg=_u(rng, 70.0, 95.0), rear_heel_rise_deg=_u(rng, 50.0, 60.0),
           rear_hip_ext_deg=_u(rng, 0.0, 10.0), front_lean_deg=_u(rng, 5.0, 15.0),
           rep_s=_u(rng, 1.8, 3.0), hold_s=_u(rng, 0.0, 0.4), front_side=int(rng.integers(2)),
           trunk_lean_deg=_u(rng, -8.0, 0.0),
           arms=str(rng.choice(['hips', 'free'])), **_noise_params(rng))
  return p


def _lunge_bottom(ctx, params, front, rear_ankle_height):
  """Bottom posture of a lunge from a two-segment leg per side.

  Returns (front hip height above the front ankle, front hip position ahead of the
  front ankle (negative: behind), rear ankle position ahead of the rear hip
  (negative), rear knee angle) for a rear ankle `rear_ankle_height` above the
  front ankle's height."""
  geom = ctx.geom
  rear = 1 - front
  kf = np.radians(params['front_knee_deg'])
  lf = np.radians(params['front_lean_deg'])
  thigh, shank = geom.thigh_length, geom.shank_length
  hip_up = shank[front] * np.cos(lf) + thigh[front] * np.cos(lf - kf)
  hip_fwd = shank[front] * np.sin(lf) + thigh[front] * np.sin(lf - kf)
  th = -np.radians(params['rear_hip_ext_deg'])
  drop = hip_up - rear_ankle_height - thigh[rear] * np.cos(th)
  shank_angle = -np.arccos(np.clip(drop / shank[rear], -1.0, 1.0))  # back and down
  knee_r = th - shank_angle
  ankle_fwd = thigh[rear] * np.sin(th) + shank[rear] * np.sin(shank_angle)
  return hip_up, hip_fwd, ankle_fwd, knee_r


def make_lunge(ctx: Context, params: dict):
  """Stationary lunges (split squats): the feet stay in a split stance, front foot
  flat, rear foot on its toes; both knees flex until the front thigh nears the
  horizontal and extend again. The split stance's length is the one that fits the
  bottom posture. The rear heel height is solved (bisection) so that the rear knee
  follows its designed angle."""
  geom = ctx.geom
  t = ctx.t
  num = ctx.num_frames
  front = params['front_side']
  rear = 1 - front
  width, toe_out = params['stance_width'], params['toe_out_deg']
  r_home, p_home = _flat_feet(ctx, width, toe_out)
  # Bottom posture: rear foot at home with its heel up, front foot where it fits.
  xz_rear = _heel_xz(geom, r_home, p_home, rear)
  yaw_rear = _yaw(toe_out, rear)
  r_up, p_up, _ = stance_pose_sides(geom, np.array([rear]), xz_rear[None], np.array([yaw_rear]),
                                     np.array([-params['rear_heel_rise_deg']]))
  rear_ankle = p_up[0] + r_up[0] @ geom.talus_in_calcn[rear]
  front_ankle_home = _ankle(geom, r_home, p_home)[front]
  hip_up, hip_fwd, ankle_fwd, knee_rear_bottom = _lunge_bottom(
      ctx, params, front, rear_ankle[1] - front_ankle_home[1])
  pel_x = rear_ankle[0] - ankle_fwd - geom.hip_in_pelvis[rear, 0]
  step = pel_x + geom.hip_in_pelvis[front, 0] - hip_fwd - front_ankle_home[0]
  p_feet = p_home.copy()
  p_feet[front, 0] += step
  # Depth over repetitions.
  rng = np.random.default_rng(params['noise_seed'])
  total = t[-1] + 1.0 / ctx.fps
  rep, hold = params['rep_s'], params['hold_s'] / params['rep_s']
  starts = _reps(total, rep, rng, pause=(0.2, 0.8))
  depth = _rep_profile(t, starts, rep, [(0.0, 0.0), (0.5 - hold / 2, 1.0),
                                        (0.5 + hold / 2, 1.0), (1.0, 0.0)])
  deg = _base_degrees(ctx, params)
  deg[:, ctx.index('lumbar_extension')] += params['trunk_lean_deg'] * depth
  if params['arms'] == 'hips':
    _arm_pose(deg, ctx, 'hips', depth)
  else:
    for s in kinematics.SIDES:
      deg[:, ctx.index(f'elbow_flex_{s}')] += 25.0 * depth
  _add_noise(ctx, deg, params)
  # Pelvis: straight down between the feet, from the highest height both legs reach
  # (knees 10 degrees, rear heel up) to the bottom posture.
  tr, tp = _static_feet(ctx, r_home, p_feet)
  r_pel = _pelvis_matrix(ctx, np.radians(deg))
  rel = np.einsum('tij,sj->tsi', r_pel, geom.hip_in_pelvis)
  pel_y_bottom = front_ankle_home[1] + hip_up - geom.hip_in_pelvis[front, 1]
  reach = geom.hip_to_ankle_at(np.radians([10.0, 10.0]))
  ankles = np.stack([_ankle(geom, r_home, p_feet)[front], rear_ankle])
  hips_xz = np.array([pel_x, 0.0]) + geom.hip_in_pelvis[[front, rear]][:, [0, 2]]
  horiz2 = np.sum((hips_xz - ankles[:, [0, 2]])**2, axis=-1)
  pel_y_top = float((ankles[:, 1] + np.sqrt(np.maximum(reach[[front, rear]]**2 - horiz2, 1e-6))
                     - geom.hip_in_pelvis[[front, rear], 1]).min())
  pel_y_top = max(pel_y_top, pel_y_bottom)
  pelvis = np.stack([np.full(num, pel_x), pel_y_top + (pel_y_bottom - pel_y_top) * depth,
                     np.zeros(num)], -1)
  pelvis[:, [0, 2]] += _sway(ctx, params, 0.004)
  knee_f = np.radians(10.0 + (params['front_knee_deg'] - 10.0) * depth)
  lean_f = np.radians(params['front_lean_deg']) * depth
  # Rear heel: rises until the rear hip-ankle distance fits the rear knee angle.
  knee_r = np.radians(12.0) + (knee_rear_bottom - np.radians(12.0)) * depth
  hip_rear = pelvis + rel[:, rear]
  rise = heel_rise_needed(geom, np.full(num, rear), hip_rear, np.broadcast_to(xz_rear, (num, 2)),
                           np.full(num, yaw_rear), knee_target=knee_r,
                           dorsiflexion_max=np.full(num, np.radians(12.0)))
  rise = kinematics.smooth_envelope(rise, width=max(1, int(round(0.03 * ctx.fps))))
  r_, p_, m_ = stance_pose_sides(geom, np.full(num, rear), np.broadcast_to(xz_rear, (num, 2)),
                                  np.full(num, yaw_rear), -rise)
  tr[:, rear], tp[:, rear] = r_, p_
  mtp = np.zeros((num, 2))
  mtp[:, rear] = m_
  _roll_without_slip(ctx, tr, tp, mtp, np.ones((num, 2), bool))
  for s_, k_ in ((front, knee_f), (rear, knee_r)):
    side = kinematics.SIDES[s_]
    deg[:, ctx.index(f'knee_angle_{side}')] = np.degrees(k_)
  deg[:, ctx.index(f'hip_flexion_{kinematics.SIDES[front]}')] = np.degrees(knee_f - lean_f)
  return _finish(ctx, deg, pelvis, tr, tp, mtp=mtp, extra=dict(step_length=float(step)))


def _heel_xz(geom, r, p, side):
  """(2,) heel (x, z) of a flat calcn pose."""
  return (p[side] + r[side] @ geom.heel_in_calcn[side])[[0, 2]]


def _yaw(toe_out_deg, side):
  return np.radians(toe_out_deg) * (-1.0 if side == 0 else 1.0)


# ---- standing upper-body movements ---------------------------------------------------

def _quiet_stance(ctx, params, deg, extra_drop=None, shift_x=None, shift_z=None):
  """Flat feet at the sampled width; pelvis over them with postural sway."""
  r_feet, p_feet = _flat_feet(ctx, params['stance_width'], params['toe_out_deg'])
  sway = _sway(ctx, params, 0.006)
  sx = sway[:, 0] + (0.0 if shift_x is None else shift_x)
  sz = sway[:, 1] + (0.0 if shift_z is None else shift_z)
  pelvis = _standing_pelvis(ctx, params, r_feet, p_feet, deg, shift_x=sx, shift_z=sz,
                            drop=extra_drop)
  tr, tp = _static_feet(ctx, r_feet, p_feet)
  return pelvis, tr, tp


def _raise_params(rng) -> dict:
  p = _stand_params(rng)
  p.update(peak_deg=_u(rng, 90.0, 170.0), rep_s=_u(rng, 1.8, 3.5), hold=_u(rng, 0.0, 0.2),
           mode=str(rng.choice(['both', 'right', 'left', 'alternate'])),
           elbow_raise_deg=_u(rng, 0.0, 15.0), **_noise_params(rng))
  return p


def _raise_amounts(ctx, params):
  """(T, 2) 0..1 raise amount of the right and left arm over the repetitions."""
  rng = np.random.default_rng(params['noise_seed'])
  total = ctx.t[-1] + 1.0 / ctx.fps
  rep, hold = params['rep_s'], params['hold']
  starts = _reps(total, rep, rng, pause=(0.1, 0.6))
  keys = [(0.0, 0.0), (0.5 - hold / 2, 1.0), (0.5 + hold / 2, 1.0), (1.0, 0.0)]
  amount = np.zeros((ctx.num_frames, 2))
  for n, t0 in enumerate(starts):
    one = _rep_profile(ctx.t, [t0], rep, keys)
    mode = params['mode']
    if mode == 'both':
      amount += one[:, None]
    elif mode in ('right', 'left'):
      amount[:, 0 if mode == 'right' else 1] += one
    else:
      amount[:, n % 2] += one
  return amount


def sample_arm_flexion(rng) -> dict:
  return _raise_params(rng)


def make_arm_flexion(ctx: Context, params: dict):
  """Front raises: shoulder flexion to `peak_deg` with the elbow nearly straight and
  the palms facing each other; the trunk extends slightly at the top."""
  amount = _raise_amounts(ctx, params)
  deg = _base_degrees(ctx, params)
  for k, s in enumerate(kinematics.SIDES):
    a = amount[:, k]
    deg[:, ctx.index(f'arm_flex_{s}')] += params['peak_deg'] * a
    deg[:, ctx.index(f'arm_add_{s}')] += params['arm_abduction_deg'] * a  # back to 0
    deg[:, ctx.index(f'elbow_flex_{s}')] += (params['elbow_raise_deg'] - params['elbow_deg']) * a
    deg[:, ctx.index(f'pro_sup_{s}')] += (85.0 - params['pro_sup_deg']) * a
  top = np.clip(amount.max(axis=1) * params['peak_deg'] / 170.0, 0, 1)
  deg[:, ctx.index('lumbar_extension')] += 6.0 * top**2
  _add_noise(ctx, deg, params)
  pelvis, tr, tp = _quiet_stance(ctx, params, deg)
  return _finish(ctx, deg, pelvis, tr, tp)


def sample_arm_abduction(rng) -> dict:
  return _raise_params(rng)


def make_arm_abduction(ctx: Context, params: dict):
  """Lateral raises: shoulder abduction to `peak_deg` in the frontal plane; above
  90 degrees the humerus rotates externally (as it must to clear the acromion)."""
  amount = _raise_amounts(ctx, params)
  deg = _base_degrees(ctx, params)
  for k, s in enumerate(kinematics.SIDES):
    a = amount[:, k]
    angle = params['arm_abduction_deg'] + (params['peak_deg'] - params['arm_abduction_deg']) * a
    deg[:, ctx.index(f'arm_add_{s}')] = -angle
    deg[:, ctx.index(f'arm_rot_{s}')] = -60.0 * curves.minimum_jerk((angle - 80.0) / 80.0)
    deg[:, ctx.index(f'elbow_flex_{s}')] += (params['elbow_raise_deg'] - params['elbow_deg']) * a
    deg[:, ctx.index(f'pro_sup_{s}')] += (90.0 - params['pro_sup_deg']) * a
  _add_noise(ctx, deg, params)
  pelvis, tr, tp = _quiet_stance(ctx, params, deg)
  return _finish(ctx, deg, pelvis, tr, tp)


def sample_reaching(rng) -> dict:
  p = _stand_params(rng)
  p.update(num_targets=int(rng.integers(2, 5)), reach_s=_u(rng, 0.6, 1.2), hold_s=_u(rng, 0.1, 0.5),
           side=str(rng.choice(['right', 'left'])), **_noise_params(rng))
  targets = []
  for _ in range(p['num_targets']):
    # Shoulder flexion / abduction (deg) of the target direction, its distance as
    # elbow extension (0 = full reach), and how much the trunk helps.
    kind = str(rng.choice(['forward', 'up', 'side', 'across', 'low']))
    flex, abd, trunk_flex, trunk_rot = {
        'forward': (_u(rng, 70, 100), _u(rng, 0, 20), _u(rng, 0, 15), _u(rng, 0, 10)),
        'up': (_u(rng, 130, 165), _u(rng, 0, 20), _u(rng, -8, 0), 0.0),
        'side': (_u(rng, 20, 50), _u(rng, 60, 90), 0.0, _u(rng, -10, 0)),
        'across': (_u(rng, 70, 100), _u(rng, -30, -15), _u(rng, 0, 10), _u(rng, 10, 25)),
        'low': (_u(rng, 40, 70), _u(rng, 0, 15), _u(rng, 25, 45), _u(rng, 0, 10)),
    }[kind]
    targets.append(dict(kind=kind, flex=flex, abd=abd, elbow=_u(rng, 0, 25),
                        trunk_flex=trunk_flex, trunk_rot=trunk_rot))
  p['targets'] = targets
  return p


def make_reaching(ctx: Context, params: dict):
  """Reaches of one arm to sampled targets (forward, up, to the side, across the
  body, low), each out and back with minimum-jerk timing (Flash & Hogan 1985); the
  elbow extends as the shoulder moves, the trunk flexes and rotates towards far
  targets, the knees bend for low ones."""
  t = ctx.t
  side = 0 if params['side'] == 'right' else 1
  s = kinematics.SIDES[side]
  keys_t, keys_v = [0.0], [np.zeros(6)]
  now = _u(np.random.default_rng(params['noise_seed']), 0.2, 0.6)
  for target in params['targets']:
    v = np.array([target['flex'], target['abd'], target['elbow'], target['trunk_flex'],
                  target['trunk_rot'], 1.0])
    keys_t += [now, now + params['reach_s'], now + params['reach_s'] + params['hold_s'],
               now + 2 * params['reach_s'] + params['hold_s']]
    keys_v += [np.zeros(6), v, v, np.zeros(6)]
    now += 2 * params['reach_s'] + params['hold_s'] + 0.2
  path = curves.keyframe_timeline(keys_t, np.array(keys_v), t)
  amount = path[:, 5]
  deg = _base_degrees(ctx, params)
  deg[:, ctx.index(f'arm_flex_{s}')] += path[:, 0]
  deg[:, ctx.index(f'arm_add_{s}')] = (1 - amount) * deg[:, ctx.index(f'arm_add_{s}')] - path[:, 1]
  # Elbow: from its rest angle through a bent transport phase to the target angle.
  rest = params['elbow_deg']
  deg[:, ctx.index(f'elbow_flex_{s}')] = (rest * (1 - amount) + path[:, 2] * amount
                                          + 40.0 * amount * (1 - amount) * 4 * 0.5)
  deg[:, ctx.index(f'pro_sup_{s}')] += (90.0 - params['pro_sup_deg']) * amount
  deg[:, ctx.index(f'wrist_flex_{s}')] += -10.0 * amount
  sign = 1.0 if side == 0 else -1.0  # rotate the trunk towards the reaching side
  deg[:, ctx.index('lumbar_extension')] += -0.6 * path[:, 3]
  deg[:, ctx.index('pelvis_tilt')] += -0.4 * path[:, 3]
  deg[:, ctx.index('lumbar_rotation')] += -sign * path[:, 4] * 0.7
  deg[:, ctx.index('pelvis_rotation')] += -sign * path[:, 4] * 0.3
  _add_noise(ctx, deg, params)
  # Low reaches bend the knees: the pelvis drops with the trunk flexion and shifts
  # back to keep the mass over the feet.
  drop = 0.004 * 4.0 * np.logaddexp(0.0, (path[:, 3] - 15.0) / 4.0)  # smooth max(., 0)
  back = -0.002 * path[:, 3]
  pelvis, tr, tp = _quiet_stance(ctx, params, deg, extra_drop=drop, shift_x=back)
  return _finish(ctx, deg, pelvis, tr, tp)


def sample_trunk_flexion(rng) -> dict:
  p = _stand_params(rng)
  p.update(direction=str(rng.choice(['forward', 'forward', 'lateral'])),
           hip_flexion_deg=_u(rng, 30.0, 70.0), lumbar_flexion_deg=_u(rng, 25.0, 55.0),
           lateral_deg=_u(rng, 15.0, 30.0), rep_s=_u(rng, 2.5, 4.5), hold=_u(rng, 0.0, 0.2),
           knee_deg=_u(rng, 0.0, 15.0), **_noise_params(rng))
  return p


def make_trunk_flexion(ctx: Context, params: dict):
  """Forward bending (toe-touch style: pelvis tilting forward about the hips plus
  lumbar flexion, lumbo-pelvic rhythm after Esola et al. 1996; the hips move back to
  keep the mass over the feet, the arms hang) or lateral bending to alternate
  sides."""
  rng = np.random.default_rng(params['noise_seed'])
  total = ctx.t[-1] + 1.0 / ctx.fps
  rep, hold = params['rep_s'], params['hold']
  starts = _reps(total, rep, rng, pause=(0.2, 0.8))
  deg = _base_degrees(ctx, params)
  shift_x = drop = None
  if params['direction'] == 'forward':
    bend = _rep_profile(ctx.t, starts, rep, [(0.0, 0.0), (0.5 - hold / 2, 1.0),
                                             (0.5 + hold / 2, 1.0), (1.0, 0.0)])
    # Lumbar flexion leads early in the bend, the pelvis contributes more later.
    lumbar = params['lumbar_flexion_deg'] * np.sqrt(np.clip(bend, 0, 1))
    hip = params['hip_flexion_deg'] * bend**1.5
    deg[:, ctx.index('pelvis_tilt')] = -hip
    deg[:, ctx.index('lumbar_extension')] += -lumbar
    for s in kinematics.SIDES:
      deg[:, ctx.index(f'arm_flex_{s}')] += 0.9 * (hip + lumbar)  # arms hang
      deg[:, ctx.index(f'knee_angle_{s}')] = 7.0 + params['knee_deg'] * bend
    shift_x = -0.0025 * (hip + 0.5 * lumbar)
    drop = 0.002 * params['knee_deg'] * bend
  else:
    sides = np.zeros(ctx.num_frames)
    for n, t0 in enumerate(starts):
      sign = 1.0 if n % 2 == 0 else -1.0
      sides += sign * _rep_profile(ctx.t, [t0], rep, [(0.0, 0.0), (0.5 - hold / 2, 1.0),
                                                      (0.5 + hold / 2, 1.0), (1.0, 0.0)])
    deg[:, ctx.index('lumbar_bending')] += params['lateral_deg'] * sides
    deg[:, ctx.index('pelvis_list')] += 0.15 * params['lateral_deg'] * sides
    for k, s in enumerate(kinematics.SIDES):
      # The arm on the concave side slides down the thigh.
      deg[:, ctx.index(f'elbow_flex_{s}')] += 10.0 * np.abs(sides)
    shift_z = 0.03 * sides
    _add_noise(ctx, deg, params)
    pelvis, tr, tp = _quiet_stance(ctx, params, deg, shift_z=shift_z)
    return _finish(ctx, deg, pelvis, tr, tp)
  _add_noise(ctx, deg, params)
  pelvis, tr, tp = _quiet_stance(ctx, params, deg, shift_x=shift_x, extra_drop=drop)
  return _finish(ctx, deg, pelvis, tr, tp)


def sample_trunk_rotation(rng) -> dict:
  p = _stand_params(rng, width=(0.2, 0.35))
  p.update(rotation_deg=_u(rng, 25.0, 45.0), pelvis_share=_u(rng, 0.15, 0.35),
           period_s=_u(rng, 2.0, 4.0), arms=str(rng.choice(['crossed', 'out', 'hips'])),
           **_noise_params(rng))
  return p


def make_trunk_rotation(ctx: Context, params: dict):
  """Axial trunk rotation to alternate sides, mostly lumbar (the model lumps the
  thoracic spine into the torso) with some pelvic rotation over planted feet."""
  phase = _u(np.random.default_rng(params['noise_seed']), 0.0, 1.0)
  ramp = curves.minimum_jerk(ctx.t / 0.8)
  rot = params['rotation_deg'] * ramp * np.sin(2 * np.pi * (ctx.t / params['period_s'] + phase))
  deg = _base_degrees(ctx, params)
  deg[:, ctx.index('lumbar_rotation')] += (1 - params['pelvis_share']) * rot
  deg[:, ctx.index('pelvis_rotation')] += params['pelvis_share'] * rot
  if params['arms'] == 'out':
    for s in kinematics.SIDES:
      deg[:, ctx.index(f'arm_add_{s}')] = -80.0
      deg[:, ctx.index(f'elbow_flex_{s}')] = 30.0
  else:
    _arm_pose(deg, ctx, params['arms'], np.ones(ctx.num_frames))
  _add_noise(ctx, deg, params)
  pelvis, tr, tp = _quiet_stance(ctx, params, deg)
  return _finish(ctx, deg, pelvis, tr, tp)


# ---- stepping ------------------------------------------------------------------------------

def sample_stepping(rng) -> dict:
  p = _stand_params(rng, width=(0.12, 0.20))
  p.update(variant=str(rng.choice(['side_step', 'march'])), step_s=_u(rng, 0.45, 0.75),
           shift_s=_u(rng, 0.25, 0.45), side_step=_u(rng, 0.18, 0.3),
           march_height=_u(rng, 0.10, 0.25), clearance=_u(rng, 0.04, 0.09),
           first_side=int(rng.integers(2)), steps_each_way=int(rng.integers(2, 4)),
           **_noise_params(rng))
  return p


def make_stepping(ctx: Context, params: dict):
  """Side-stepping (a few steps to one side and back: the leading foot steps out,
  the trailing foot closes) or marching in place (thigh lifted to
  `march_height` of foot lift). Before each step the pelvis shifts over the
  supporting foot; each swing is a minimum-jerk path with a sin^2 lift."""
  geom = ctx.geom
  t = ctx.t
  num = ctx.num_frames
  total = t[-1] + 1.0 / ctx.fps
  width, toe_out = params['stance_width'], params['toe_out_deg']
  r_home, p_home = _flat_feet(ctx, width, toe_out)
  tr, tp = _static_feet(ctx, r_home, p_home)
  deg = _base_degrees(ctx, params)
  _add_noise(ctx, deg, params)
  feet_z = np.array([p_home[0, 2], p_home[1, 2]])
  shift_z = np.zeros(num)
  now = _u(np.random.default_rng(params['noise_seed']), 0.2, 0.5)
  # Events: (side that swings, its z offset change) in order.
  events = []
  if params['variant'] == 'side_step':
    direction = 1.0 if params['first_side'] == 0 else -1.0  # +z: to the subject's right
    lead = 0 if direction > 0 else 1
    while len(events) < 40:
      for _ in range(params['steps_each_way']):
        step = direction * params['side_step']
        events += [(lead, step), (1 - lead, step)]
      direction, lead = -direction, 1 - lead
  else:
    side = params['first_side']
    while len(events) < 40:
      events.append((side, 0.0))
      side = 1 - side
  offset = np.zeros(2)  # current z offsets of the feet
  z_off = np.zeros((num, 2))
  shift_keys_t, shift_keys_v = [0.0], [0.0]
  for side, dz in events:
    if now + params['shift_s'] + params['step_s'] > total:
      break
    support = 1 - side
    # Shift the pelvis halfway towards the supporting foot, step, recentre.
    centre = 0.5 * (offset[0] + offset[1])
    over = centre + 0.5 * (feet_z[support] + offset[support] - 0.5 * (feet_z[0] + feet_z[1])
                           - centre)
    shift_keys_t += [now + params['shift_s'], now + params['shift_s'] + 0.3 * params['step_s']]
    shift_keys_v += [over, over]
    t0, t1 = now + params['shift_s'], now + params['shift_s'] + params['step_s']
    inside = (t >= t0) & (t <= t1)
    s = (t[inside] - t0) / (t1 - t0)
    w = curves.minimum_jerk((s - 0.15) / 0.7)  # sideways only once the foot is up
    z_off[inside, side] = offset[side] + dz * w
    z_off[t > t1, side] = offset[side] + dz
    bump = np.sin(np.pi * s)**2
    if params['variant'] == 'side_step':
      lift = params['clearance'] * bump
      pitch = -10.0 * bump
    else:
      lift = params['march_height'] * bump
      tp[inside, side, 0] += 0.05 * np.sin(np.pi * s)**4  # the knee drives forward
      pitch = -35.0 * bump  # the foot hangs, toes down
    # Pitch the foot (toes down) about its toe tip, then lift it: the heel leaves
    # the floor first and the toes last, without dragging.
    tip = tp[inside, side] + np.einsum('tij,j->ti', tr[inside, side],
                                       geom.sole_in_calcn[side, 4])
    axis = tr[inside, side][:, :, 2]
    rot = kinematics.axis_rotation(axis, np.radians(pitch))
    tr[inside, side] = rot @ tr[inside, side]
    tp[inside, side] = tip + np.einsum('tij,tj->ti', rot, tp[inside, side] - tip)
    tp[inside, side, 1] += lift
    offset[side] += dz
    now = t1
    # The pelvis starts back towards the middle while the foot is in the air and is
    # centred between the feet shortly after it lands.
    centre = 0.5 * (offset[0] + offset[1])
    shift_keys_t += [now + 0.3 * params['shift_s']]
    shift_keys_v += [centre]
    now += 0.3 * params['shift_s'] + _u(np.random.default_rng(int(now * 1000)), 0.0, 0.3)
  tp[..., 2] += z_off
  shift_z = curves.keyframe_timeline(shift_keys_t, shift_keys_v, t)
  sway = _sway(ctx, params, 0.004)
  r_pel = _pelvis_matrix(ctx, np.radians(deg))
  rel = np.einsum('tij,sj->tsi', r_pel, geom.hip_in_pelvis)
  pelvis = np.stack([sway[:, 0], np.zeros(num), shift_z + sway[:, 1]], -1)
  # Height: both legs (the swing one with its foot on the floor) reach with ~8 deg knees.
  flat_p = tp.copy()
  flat_p[..., 1] = p_home[None, :, 1]
  hip_xz = pelvis[:, None, [0, 2]] + rel[..., [0, 2]]
  ankle = _ankle(geom, tr, flat_p)
  reach = geom.hip_to_ankle_at(np.full((num, 2), np.radians(8.0)))
  horiz2 = np.sum((hip_xz - ankle[..., [0, 2]])**2, axis=-1)
  pelvis[:, 1] = kinematics.lower_envelope(
      (ankle[..., 1] + np.sqrt(np.maximum(reach**2 - horiz2, 1e-6)) - rel[..., 1]).min(1),
      width=max(1, int(round(0.1 * ctx.fps))))
  for s in kinematics.SIDES:
    deg[:, ctx.index(f'elbow_flex_{s}')] += 10.0
  return _finish(ctx, deg, pelvis, tr, tp)


# ---- jumping jacks ----------------------------------------------------------------------

def sample_jumping_jacks(rng) -> dict:
  p = _stand_params(rng, width=(0.10, 0.16), toe_out=(5.0, 15.0))
  p.update(cycle_s=_u(rng, 0.8, 1.2), contact_fraction=_u(rng, 0.55, 0.7),
           wide_width=_u(rng, 0.45, 0.7), arm_peak_deg=_u(rng, 150.0, 175.0),
           knee_absorb_deg=_u(rng, 15.0, 30.0), heel_rise_deg=_u(rng, 15.0, 30.0),
           elbow_deg_jj=_u(rng, 5.0, 25.0), hop_height=_u(rng, 0.03, 0.06),
           **_noise_params(rng))
  return p


def _ground_pelvis_y(ctx, deg, pelvis_xz, target_r, target_p, knee_deg):
  """(T,) pelvis_ty at which both legs have `knee_deg` (T,) of flexion (the lower of
  the two legs' heights)."""
  geom = ctx.geom
  r_pel = _pelvis_matrix(ctx, np.radians(deg))
  rel = np.einsum('tij,sj->tsi', r_pel, geom.hip_in_pelvis)
  hip_xz = pelvis_xz[:, None] + rel[..., [0, 2]]
  reach = geom.hip_to_ankle_at(np.stack([np.radians(knee_deg)] * 2, -1))
  return leg_height(geom, hip_xz, rel, target_r, target_p, reach).min(axis=1)


def make_jumping_jacks(ctx: Context, params: dict):
  """Jumping jacks: hops that alternate the feet between together and wide apart
  while the arms sweep from the sides to overhead (abduction). Contact on the
  forefoot with the heels lowering mid-contact, knees absorbing and extending;
  the feet move sideways only while airborne; the pelvis follows a C1 arc in flight."""
  geom = ctx.geom
  t = ctx.t
  num = ctx.num_frames
  half = params['cycle_s'] / 2
  tt = t.copy()  # the clip starts at a touch-down with the feet together
  k = np.floor(tt / half).astype(int)
  u = np.mod(tt, half) / half
  c = params['contact_fraction']
  contact = u < c
  flight = ~contact
  wide = (k % 2 == 1)  # wide stance during odd halves' contact
  w_in, w_out = params['stance_width'], params['wide_width']
  fu = np.clip((u - c) / (1 - c), 0.0, 1.0)
  w_now = np.where(wide, w_out, w_in)
  w_next = np.where(wide, w_in, w_out)
  move = curves.minimum_jerk((fu - 0.15) / 0.7)  # sideways only once clear of the floor
  width = np.where(contact, w_now, w_now + (w_next - w_now) * move)
  # Heel: up at touch-down and take-off, down mid-contact; in flight, pointed.
  cu = np.clip(u / c, 0.0, 1.0)
  rise = params['heel_rise_deg'] * np.where(contact, 1.0 - np.sin(np.pi * cu)**2, 1.0)
  toe_out = params['toe_out_deg']
  xz = np.zeros((num, 2, 2))
  heel_x0 = geom.hip_in_pelvis[:, 0] - (geom.talus_in_calcn[:, 0] - geom.heel_in_calcn[:, 0])
  xz[..., 0] = heel_x0 + 0.06  # the heels sit a little forward (balls under the hips)
  xz[..., 1] = np.stack([0.5 * width, -0.5 * width], -1)
  yaw = np.radians(toe_out) * np.array([-1.0, 1.0])
  both = np.broadcast_to([0, 1], (num, 2))
  tr, tp, mtp = stance_pose_sides(geom, both, xz, np.broadcast_to(yaw, (num, 2)),
                                   -np.stack([rise, rise], -1))
  _roll_without_slip(ctx, tr, tp, mtp, np.stack([contact, contact], -1))
  deg = _base_degrees(ctx, params)
  # Arms: up while the feet are apart (continuous sweep over the cycle).
  arm = 0.5 - 0.5 * np.cos(np.pi * (tt / half - c / 2))
  for s in kinematics.SIDES:
    rest, peak = params['arm_abduction_deg'], params['arm_peak_deg']
    abduction = rest + (peak - rest) * arm
    deg[:, ctx.index(f'arm_add_{s}')] = -abduction
    # Above 90 degrees the humerus rotates externally.
    deg[:, ctx.index(f'arm_rot_{s}')] = -50.0 * curves.minimum_jerk((abduction - 80.0) / 80.0)
    deg[:, ctx.index(f'elbow_flex_{s}')] = params['elbow_deg_jj']
    deg[:, ctx.index(f'pro_sup_{s}')] = 90.0
  _add_noise(ctx, deg, params)
  knee = 8.0 + params['knee_absorb_deg'] * np.where(contact, np.sin(np.pi * cu), 0.0)
  pelvis_xz = np.zeros((num, 2))
  y = _ground_pelvis_y(ctx, deg, pelvis_xz, tr, tp, knee)
  y_fill = np.where(contact, y, np.nan)
  for a, b in kinematics.segments(flight):
    hermite_fill(y_fill, a, b, ctx.fps)
    # Plus a hop: sin^2 keeps the joins C1.
    y_fill[a:b] += params['hop_height'] * np.sin(np.pi * fu[a:b])**2
  y = np.where(np.isnan(y_fill), y, y_fill)
  # Airborne feet follow the pelvis up (they keep their take-off height above the
  # floor plus what the pelvis gains over its contact height).
  y_contact = _ground_pelvis_y(ctx, deg, pelvis_xz, tr, tp, np.full(num, 8.0))
  lift = np.where(flight, np.maximum(y - y_contact, 0.0), 0.0)
  tp[..., 1] += lift[:, None]
  pelvis = np.stack([pelvis_xz[:, 0], y, pelvis_xz[:, 1]], -1)
  return _finish(ctx, deg, pelvis, tr, tp, mtp=mtp, flight=flight, reach_knee_deg=None)


# ---- countermovement jump --------------------------------------------------------------

def sample_jumping(rng) -> dict:
  p = _stand_params(rng, width=(0.18, 0.32), toe_out=(5.0, 15.0))
  p.update(push_s=_u(rng, 0.22, 0.32), counter_knee_deg=_u(rng, 60.0, 90.0),
           counter_s=_u(rng, 0.45, 0.7), land_knee_deg=_u(rng, 35.0, 65.0),
           land_s=_u(rng, 0.25, 0.4), recover_s=_u(rng, 0.5, 0.9), rest_s=_u(rng, 0.3, 0.8),
           takeoff_heel_deg=_u(rng, 30.0, 45.0), trunk_ratio=_u(rng, 0.3, 0.5),
           arm_swing=bool(rng.integers(4) > 0), **_noise_params(rng))
  return p


def make_jumping(ctx: Context, params: dict):
  """Countermovement vertical jumps: quiet stance, countermovement (knees, hips and
  trunk flex, arms swing back), push-off (legs extend with rising speed, heels
  leave the floor at the end, arms swing up), ballistic flight of the pelvis
  (jump height h: take-off speed sqrt(2 g h), flight 2 sqrt(2 h / g)), landing on
  the forefoot and absorbing, recovery to standing. Linthorne 2001 for the phases."""
  geom = ctx.geom
  t = ctx.t
  num = ctx.num_frames
  total = t[-1] + 1.0 / ctx.fps
  p = params
  width, toe_out = p['stance_width'], p['toe_out_deg']
  heel_x0 = geom.hip_in_pelvis[:, 0] - (geom.talus_in_calcn[:, 0] - geom.heel_in_calcn[:, 0])
  xz = np.array([[heel_x0[0], 0.5 * width], [heel_x0[1], -0.5 * width]])
  yaw = np.radians(toe_out) * np.array([-1.0, 1.0])

  def pose_height(knee_deg, lean_deg, tilt_deg, heel_deg):
    """Pelvis height (n,) and calcn poses for given knee/shank lean/pelvis tilt/heel rise."""
    n = len(knee_deg)
    r, pp, m = stance_pose_sides(geom, np.broadcast_to([0, 1], (n, 2)),
                                  np.broadcast_to(xz, (n, 2, 2)), np.broadcast_to(yaw, (n, 2)),
                                  -np.stack([heel_deg, heel_deg], -1))
    ankle = _ankle(geom, r, pp)
    r_pel = kinematics.pelvis_matrix(np.radians(-tilt_deg), np.zeros(n), np.zeros(n))
    rel = np.einsum('tij,sj->tsi', r_pel, geom.hip_in_pelvis)
    k = np.radians(np.stack([knee_deg] * 2, -1))
    lean = np.radians(np.stack([lean_deg] * 2, -1))
    hips = _hip_from_leg(geom, ankle, yaw, k, lean, hip_z=rel[..., 2])
    pel = _pelvis_from_hips(geom, hips, r_pel)
    return pel, r, pp, m

  # Push-off path u in [0, 1]: knee from the countermovement to 8 deg, heel up over
  # the last 40 %; its height derivative at the end sets the push-off duration.
  def push(uu):
    uu = np.asarray(uu, dtype=np.float64)
    knee = 8.0 + (p['counter_knee_deg'] - 8.0) * (1 - uu)
    lean = np.clip(0.25 * knee, 0.0, 16.0)
    tilt = p['trunk_ratio'] * (knee - 8.0)
    # The heels rise over the last 40 %, fastest at take-off (plantarflexion is what
    # still accelerates the body once the knees are nearly straight).
    heel = p['takeoff_heel_deg'] * np.clip((uu - 0.6) / 0.4, 0.0, 1.0)**2
    return knee, lean, tilt, heel

  grid = np.linspace(0.0, 1.0, 401)
  pel_push = pose_height(*push(grid))[0]
  dydu_end = (pel_push[-1, 1] - pel_push[-2, 1]) / (grid[-1] - grid[-2])
  # Time profile u(s) = s^2 over the push (rest at its start, fastest at take-off):
  # the take-off speed is dy/du * 2 / T_push, which sets the flight (ballistic,
  # landing in the take-off posture) and the jump height v0^2 / (2 g).
  t_push = p['push_s']
  v0 = float(2 * dydu_end / t_push)
  t_flight = 2 * v0 / GRAVITY
  # Landing: the pelvis drop over the landing phase, with a profile that starts at
  # the touch-down speed v0 (1 - (1 - s)^2 starts at 2 * drop / T).
  land_knee = np.array([8.0, p['land_knee_deg']])
  pel_land = pose_height(land_knee, np.clip(0.25 * land_knee, 0.0, 16.0),
                         p['trunk_ratio'] * (land_knee - 8.0),
                         np.array([p['takeoff_heel_deg'], 0.0]))[0]
  land_drop = pel_push[-1, 1] - pel_land[1, 1]
  p = dict(p, land_s=float(np.clip(2 * land_drop / max(v0, 1e-3), 0.15, 0.6)))
  # Sequence of phases.
  knee = np.full(num, 8.0)
  lean = np.full(num, 2.0)
  tilt = np.zeros(num)
  heel = np.zeros(num)
  arms = np.zeros(num)
  y_air = np.full(num, np.nan)
  flight = np.zeros(num, bool)
  now = p['rest_s']
  jumps = 0
  cycle = p['counter_s'] + t_push + t_flight + p['land_s'] + p['recover_s'] + p['rest_s']
  while now + cycle - p['rest_s'] <= total or jumps == 0:
    t1 = now + p['counter_s']
    t2 = t1 + t_push
    t3 = t2 + t_flight
    t4 = t3 + p['land_s']
    t5 = t4 + p['recover_s']
    m = (t >= now) & (t < t1)  # countermovement
    s_ = curves.minimum_jerk((t[m] - now) / p['counter_s'])
    kk = 8.0 + (p['counter_knee_deg'] - 8.0) * s_
    knee[m], lean[m], tilt[m], heel[m] = kk, np.clip(0.25 * kk, 0.0, 16.0), \
        p['trunk_ratio'] * (kk - 8.0), 0.0
    m = (t >= t1) & (t < t2)  # push-off
    uu = ((t[m] - t1) / t_push)**2
    knee[m], lean[m], tilt[m], heel[m] = push(uu)
    m = (t >= t2) & (t < t3)  # flight: pelvis ballistic from the take-off pose
    flight[m] = True
    knee[m], lean[m], tilt[m], heel[m] = push(np.ones(m.sum()))
    tau = t[m] - t2
    y_air[m] = pel_push[-1, 1] + v0 * tau - 0.5 * GRAVITY * tau**2
    m = (t >= t3) & (t < t4)  # landing: knees absorb, heels come down (fast first)
    s_ = 1.0 - (1.0 - (t[m] - t3) / p['land_s'])**2
    kk = 8.0 + (p['land_knee_deg'] - 8.0) * s_
    knee[m], lean[m], tilt[m] = kk, np.clip(0.25 * kk, 0.0, 16.0), p['trunk_ratio'] * (kk - 8.0)
    heel[m] = p['takeoff_heel_deg'] * (1.0 - s_)
    m = (t >= t4) & (t < t5)  # recovery to standing
    s_ = curves.minimum_jerk((t[m] - t4) / p['recover_s'])
    kk = p['land_knee_deg'] + (8.0 - p['land_knee_deg']) * s_
    knee[m], lean[m], tilt[m], heel[m] = kk, np.clip(0.25 * kk, 0.0, 16.0), \
        p['trunk_ratio'] * (kk - 8.0), 0.0
    # Arms: back during the countermovement, forward-up through the push-off and
    # early flight, down again for the landing (minimum-jerk keys).
    keys = [now, t1 - 0.05, t2 + 0.12, max(t3 + 0.05, t2 + 0.2), max(t5, t2 + 0.5)]
    arms += curves.keyframe_timeline(keys, [0.0, -1.0, 1.0, 0.5, 0.0], t) * (
        (t >= now) & (t <= keys[-1]))
    now = t5 + p['rest_s']
    jumps += 1
    if jumps > 20:
      break
  pel, tr, tp, mtp = pose_height(knee, lean, tilt, heel)
  pelvis = pel.copy()
  air = ~np.isnan(y_air)
  _roll_without_slip(ctx, tr, tp, mtp, np.stack([~air, ~air], -1))
  # In flight the feet travel with the pelvis (legs held in the take-off pose).
  lift = np.where(air, y_air - pel[:, 1], 0.0)
  pelvis[air, 1] = y_air[air]
  tp[..., 1] += lift[:, None]
  # Horizontally the pelvis keeps its take-off velocity into the landing (C1 cubic
  # across the flight); the feet travel with it.
  x_before = pelvis[:, 0].copy()
  for a, b in kinematics.segments(air):
    hermite_fill(pelvis[:, 0], a, b, ctx.fps)
  tp[..., 0] += (pelvis[:, 0] - x_before)[:, None]
  deg = _base_degrees(ctx, params)
  deg[:, ctx.index('pelvis_tilt')] = -tilt
  deg[:, ctx.index('lumbar_extension')] += -0.3 * tilt
  if p['arm_swing']:
    for s in kinematics.SIDES:
      deg[:, ctx.index(f'arm_flex_{s}')] += 95.0 * arms + 45.0 * arms**2  # -50 .. 140
      deg[:, ctx.index(f'elbow_flex_{s}')] += 15.0 * np.abs(arms)
  else:
    _arm_pose(deg, ctx, 'hips', np.ones(num))
  for s in kinematics.SIDES:
    deg[:, ctx.index(f'knee_angle_{s}')] = knee
    deg[:, ctx.index(f'hip_flexion_{s}')] = knee - lean + tilt
    deg[:, ctx.index(f'ankle_angle_{s}')] = lean - heel
  _add_noise(ctx, deg, params)
  return _finish(ctx, deg, pelvis, tr, tp, mtp=mtp, flight=flight, reach_knee_deg=None,
                 extra=dict(takeoff_speed=float(v0), jump_height=float(v0**2 / (2 * GRAVITY)),
                            landing_s=p['land_s']))

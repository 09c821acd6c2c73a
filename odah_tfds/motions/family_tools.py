"""Shared building blocks of the procedural standing, stepping and jumping families.

Holds `Context` (what a family builder gets: skeleton, subject, time axis) and the
helpers shared by the family modules of this package (`lower_body.py`, `upper_body.py`,
`dynamic.py`, `balance.py`, `turning.py`, `kneeling.py`) and by `procedural.py`.
The helpers keep their leading underscore: they are internal to the `motions` package
(shared within it, not a public API) and may change with the families that use them.

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
* legs by IK (`kinematics.solve_leg_ik`, through `_solve` / `_finish`): both feet
  reach their targets exactly, which is what keeps them planted (no skating) and on
  the floor.

The builders take a `Context` and the sampled parameters and return (q (T, C)
radians/metres, info dict with `flight` (T,) bool for airborne frames).

Helpers by use: sampling (`_u`, `_noise_params`, `_stand_params`, `_reps`); design
(`_base_degrees`, `_add_noise`, `_arm_pose`, `_rep_profile`, `_sway`); feet and
pelvis (`_flat_feet`, `_static_feet`, `_yaw`, `_ankle`, `_hip_from_leg`,
`_pelvis_from_hips`, `_pelvis_matrix`, `_standing_pelvis`, `_reach_lower`,
`_roll_without_slip`); legs by IK and the builders' result (`_solve`, `_finish`).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from odah_tfds.motions import curves, kinematics
from odah_tfds.motions.gait import stance_pose_sides


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


def _arm_pose(deg, ctx, style, amount, sides=kinematics.SIDES):
  """Adds an arm posture (deg) to the arms of `sides`, scaled by amount (T,) in [0, 1]
  for 'forward'."""
  for s in sides:
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


def _yaw(toe_out_deg, side):
  return np.radians(toe_out_deg) * (-1.0 if side == 0 else 1.0)

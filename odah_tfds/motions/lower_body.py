"""Lower-body strength families: `squat`, `sit_to_stand` and `lunge`.

Feet planted throughout (flat, or the lunge's rear foot on its toes), knees and hips
flexing to a sampled depth and extending again; the pelvis height follows the
designed knee angle through a two-segment leg (`family_tools._hip_from_leg`) or the
lunge's bottom posture. Built with the shared helpers of `family_tools.py`; see
README.md for the sampled parameters.
"""

from __future__ import annotations

import numpy as np

from odah_tfds.motions import curves, kinematics
from odah_tfds.motions.family_tools import (Context, _add_noise, _ankle, _arm_pose,
                                            _base_degrees, _finish, _flat_feet, _hip_from_leg,
                                            _noise_params, _pelvis_from_hips, _pelvis_matrix,
                                            _rep_profile, _reps, _roll_without_slip,
                                            _stand_params, _static_feet, _sway, _u, _yaw)
from odah_tfds.motions.gait import heel_rise_needed, stance_pose_sides


# ---- squat --------------------------------------------------------------------------

def sample_squat(rng) -> dict:
  p = _stand_params(rng, width=(0.25, 0.45), toe_out=(5.0, 25.0))
  p.update(depth_knee_deg=_u(rng, 60.0, 110.0), rep_s=_u(rng, 2.0, 3.5),
           bottom_pause=_u(rng, 0.0, 0.25), max_dorsiflexion_deg=_u(rng, 14.0, 18.0),
           trunk_ratio=_u(rng, 0.25, 0.45), lumbar_flexion_deg=_u(rng, 0.0, 15.0),
           arms=str(rng.choice(['forward', 'hips', 'crossed'])), **_noise_params(rng))
  return p


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

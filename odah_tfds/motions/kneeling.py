"""Going down to kneel and back up, the `kneeling` motion family.

Labs record kneeling as a functional task (kneel-to-stand, floor transfers, the
half-kneeling posture of rehabilitation and of the Functional Movement Screen) and
for knee loading studies. This family is half-kneeling: one knee on the floor, the
other foot flat in front. A clip is:

1. quiet split stance (0.3-1.0 s): the feet 0.14-0.24 m apart (heel centres), toe-out
   0-10 degrees, the kneeling-side foot behind on its toes with the heel up (as the
   `lunge` family's rear foot; its toe tip under where the kneeling ankle will be),
   knees about 20 degrees, the pelvis where both legs reach highest;
2. going down (1.0-1.8 s, minimum jerk): both knees flex, the pelvis goes down and
   over the kneeling knee's place; the rear heel rises (solved, as in `lunge`, so the
   rear knee follows its design without passing 8 degrees of ankle dorsiflexion);
   from 30 % of the descent the rear foot leaves its toes and turns over in the air
   (minimum jerk in time, about its MTP joint, lifted by 4 cm) into the kneeling
   posture as the knee comes down;
3. a hold of 1-3 s, kneeling: the rear patella 1.5-3 cm above the floor (the patella
   body's origin: its centre, about that far inside the skin), the rear thigh 0-10
   degrees behind vertical, the front foot flat under a shank 0-12 degrees forward of
   vertical; the pelvis and the kneeling leg are static (the knee stays put on the
   floor), the upper body keeps its style noise;
4. rising (1.0-1.8 s, minimum jerk: the descent reversed), then the split stance for
   the rest of the clip.

The kneeling foot lies plantarflexed (ankle -43 degrees, toes flexed 25 degrees),
heel up, the toes' dorsum (hallux tip) on the floor, rather than on tucked toes: tucked
toes under a near-horizontal shank need ~45 degrees of ankle dorsiflexion and ~80 of
toe extension, beyond the model's 20 and 70, whereas this posture is inside the
model's ranges (-43 is just outside the IK's soft-limit zone of the -50 limit; a foot
lying fully flat behind the shank would need -70 to -80). The pelvis height and the
kneeling knee's angle are solved (Newton, forward kinematics of the posture) so that
the patella and the toes' dorsum are at their heights; the kneeling leg's IK target
is the forward kinematics of that design, so the IK reproduces it.

Trunk (why this split): upright (70 %, lumbar extension -3 to +3 degrees: the
standard half-kneeling posture) or leaning forward (30 %, lumbar flexion 10-30
degrees at the bottom, e.g. to reach the floor). Arms: hanging (50 %), reaching
forward (30 %: shoulder flexion 40-90 degrees at the bottom, elbows 0-20), hands on
the hips (20 %).

Kneeling on both knees (tall kneeling) is not modelled: the second knee's descent
would need a swing of the front leg into a second toes-down kneeling leg while the
first knee stays planted, which the calcaneus-target IK does not control (the knee
is not an IK target).

A clip shorter than the sequence (quiet stance, descent, hold, rise, 0.3 s of
stance) is a window of it, placed at random (`window`), as in `balance`.
`time_offset_s` records where the window starts (the hold is then
[t_bottom, t_up] - time_offset_s, see `hold_times`), `knee_height_m` the designed
patella height, `step_length` the split stance's length.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from odah_tfds.motions import curves, kinematics
from odah_tfds.motions import family_tools as fam
from odah_tfds.motions.gait import heel_rise_needed, stance_pose_sides

# pylint: disable=protected-access  (the shared family helpers of family_tools.py)

TRUNK_STYLES = ('upright', 'leaning')
TRUNK_PROBABILITY = (0.7, 0.3)
ARM_STYLES = ('hanging', 'reaching', 'hips')
ARM_PROBABILITY = (0.5, 0.3, 0.2)
ANKLE_KNEEL_DEG = -43.0  # kneeling leg's ankle: plantarflexed to just outside the
# IK's soft-limit zone (range -50, 0.5 margin, 6 degrees of soft limit)
TOE_THICKNESS = 0.02  # m, the toes' dorsal surface above their sole points
TOE_CLEARANCE = 0.003  # m, the kneeling toes' dorsum (hallux tip) above the floor
KNEEL_MTP_DEG = 25.0  # kneeling toes flexed towards the floor (range -70..45)
FLIP_DEPTH = 0.3  # depth at which the kneeling foot leaves its toes and turns over
TURN_CLEARANCE = 0.006  # m, the turning-over foot's lowest sole point above the floor
TOP_KNEE_DEG = 20.0  # knees in the split stance before and after
TOP_HEEL_RISE_DEG = 50.0  # rear heel rise assumed for the split stance's height


_u = fam._u  # a uniform float in [lo, hi)


def sample_kneeling(rng) -> dict:
  """Parameters of a kneeling clip (seconds, degrees, metres)."""
  p = fam._stand_params(rng, width=(0.14, 0.24), toe_out=(0.0, 10.0))
  trunk = str(rng.choice(TRUNK_STYLES, p=TRUNK_PROBABILITY))
  p.update(
      kneel_side=int(rng.integers(2)), quiet_s=_u(rng, 0.3, 1.0),
      descend_s=_u(rng, 1.0, 1.8), hold_s=_u(rng, 1.0, 3.0), rise_s=_u(rng, 1.0, 1.8),
      rear_hip_ext_deg=_u(rng, 0.0, 10.0),
      front_lean_deg=_u(rng, 0.0, 12.0), knee_height=_u(rng, 0.015, 0.03), trunk=trunk,
      trunk_flexion_deg=_u(rng, 10.0, 30.0) if trunk == 'leaning' else _u(rng, -3.0, 3.0),
      arms=str(rng.choice(ARM_STYLES, p=ARM_PROBABILITY)),
      reach_flexion_deg=_u(rng, 40.0, 90.0), reach_elbow_deg=_u(rng, 0.0, 20.0),
      window=_u(rng, 0.0, 1.0), **fam._noise_params(rng))
  return p


def hold_times(params: dict) -> tuple[float, float]:
  """(start, end) of the hold in seconds of a clip made with `params` (its
  `time_offset_s` subtracted)."""
  _, t_bottom, t_up, _, _ = _times(params)
  offset = params.get('time_offset_s', 0.0)
  return t_bottom - offset, t_up - offset


def _times(params: dict):
  """(start down, bottom, start up, top, nominal end) on the sequence's time axis."""
  t_down = params['quiet_s']
  t_bottom = t_down + params['descend_s']
  t_up = t_bottom + params['hold_s']
  t_top = t_up + params['rise_s']
  return t_down, t_bottom, t_up, t_top, t_top + 0.3


def _with_rear(ctx, deg_rad, params, angles) -> np.ndarray:
  """q (T, C) with the kneeling leg's hip flexion, knee, ankle and mtp set (rad)."""
  q = np.array(deg_rad)
  s = kinematics.SIDES[params['kneel_side']]
  for name, value in zip(('hip_flexion', 'knee_angle', 'ankle_angle', 'mtp_angle'), angles):
    q[:, ctx.index(f'{name}_{s}')] = value
  for name in ('hip_adduction', 'hip_rotation', 'subtalar_angle'):
    q[:, ctx.index(f'{name}_{s}')] = 0.0
  return kinematics.sync_knee_beta(ctx.skel, q)


def _kneel_leg(ctx, params, q_bottom) -> tuple[float, np.ndarray]:
  """The kneeling posture: pelvis height and the kneeling leg's (hip flexion, knee,
  ankle, mtp) angles (rad) that put the patella `knee_height` above the floor, the
  toes' dorsum (hallux tip) 3 mm above it, for the pelvis orientation and upper body
  of q_bottom (1, C) (pelvis above x = z = 0), the ankle at ANKLE_KNEEL_DEG and the
  toes at KNEEL_MTP_DEG. Newton iterations on (pelvis height, knee) with
  forward-difference Jacobians."""
  skel, side = ctx.skel, params['kneel_side']
  s = kinematics.SIDES[side]
  contacts = kinematics.foot_contacts(skel)
  hallux = int(np.nonzero(contacts.foot == side)[0][4])
  toes = skel.body_index(f'toes_{s}')
  patella = skel.body_index(f'patella_{s}')
  hip = -np.radians(params['rear_hip_ext_deg']) - q_bottom[0, ctx.index('pelvis_tilt')]
  ankle = np.radians(ANKLE_KNEEL_DEG)
  ty = ctx.index('pelvis_ty')
  mtp = np.radians(KNEEL_MTP_DEG)
  x = np.array([0.5, np.radians(100.0)])

  def residual(xs):  # (K, 2) -> (K, 2)
    q = _with_rear(ctx, np.repeat(q_bottom, len(xs), 0), params,
                   (hip, xs[:, 1], ankle, mtp))
    q[:, ty] = xs[:, 0]
    pos, rot = kinematics.body_poses(skel, q, ctx.scales)
    tip = contacts.world(pos, rot, ctx.scales)[:, hallux]
    tip = tip + rot[:, toes] @ np.array([0.0, TOE_THICKNESS, 0.0])
    return np.stack([pos[:, patella, 1] - params['knee_height'], tip[:, 1] - TOE_CLEARANCE], -1)

  for _ in range(12):
    h = 1e-6
    xs = np.concatenate([x[None], x[None] + h * np.eye(2)])
    r = residual(xs)
    jac = ((r[1:] - r[:1]) / h).T
    x = x - np.linalg.solve(jac, r[0])
    if np.abs(r[0]).max() < 1e-7:
      break
  return float(x[0]), np.array([hip, x[1], ankle, mtp])


def _design(ctx: fam.Context, params: dict):
  """Designed coordinates (deg), pelvis (T, 3), foot targets, mtp (T, 2) and the step
  length at ctx.t (sequence times)."""
  skel, geom, t, num = ctx.skel, ctx.geom, ctx.t, ctx.num_frames
  rear = params['kneel_side']
  front = 1 - rear
  width, toe_out = params['stance_width'], params['toe_out_deg']
  r_home, p_home = fam._flat_feet(ctx, width, toe_out)
  t_down, t_bottom, t_up, t_top, _ = _times(params)
  depth = curves.keyframe_timeline([t_down, t_bottom, t_up, t_top], [0.0, 1.0, 1.0, 0.0], t)
  deg = fam._base_degrees(ctx, params)
  deg[:, ctx.index('lumbar_extension')] -= params['trunk_flexion_deg'] * depth
  if params['trunk'] == 'leaning':  # the pelvis takes part of a forward lean
    deg[:, ctx.index('pelvis_tilt')] -= 0.3 * params['trunk_flexion_deg'] * depth
  if params['arms'] == 'hips':
    fam._arm_pose(deg, ctx, 'hips', depth)
  elif params['arms'] == 'reaching':
    for s in kinematics.SIDES:
      deg[:, ctx.index(f'arm_flex_{s}')] += params['reach_flexion_deg'] * depth
      deg[:, ctx.index(f'elbow_flex_{s}')] += (params['reach_elbow_deg']
                                               - params['elbow_deg']) * depth
  else:
    for s in kinematics.SIDES:
      deg[:, ctx.index(f'elbow_flex_{s}')] += 10.0 * depth
  # Style noise on the upper body only: the pelvis orientation stays as designed, so
  # that the knee on the floor stays put during the hold.
  fam._add_noise(ctx, deg, params, names=[
      'lumbar_extension', 'lumbar_bending', 'lumbar_rotation'] + [
          f'{c}_{s}' for s in kinematics.SIDES
          for c in ('arm_flex', 'arm_add', 'arm_rot', 'elbow_flex', 'wrist_flex', 'wrist_dev',
                    'pro_sup')])
  # Bottom posture: pelvis above x = z = 0 at the kneeling height.
  # (The pelvis orientation at full depth, whatever part of the sequence the clip
  # shows; the upper body does not affect the legs.)
  q_rad = np.radians(deg)
  full = int(np.argmax(depth))
  q_b = q_rad[full:full + 1].copy()
  q_b[0, [ctx.index('pelvis_tx'), ctx.index('pelvis_tz')]] = 0.0
  q_b[0, ctx.index('pelvis_tilt')] = np.radians(
      -0.3 * params['trunk_flexion_deg'] if params['trunk'] == 'leaning' else 0.0)
  y_bottom, kneel = _kneel_leg(ctx, params, q_b)
  q_b[0, ctx.index('pelvis_ty')] = y_bottom
  pos, rot = kinematics.body_poses(skel, _with_rear(ctx, q_b, params, kneel), ctx.scales)
  tip = fam._ankle(geom, rot[:, [skel.body_index('calcn_r'), skel.body_index('calcn_l')]],
                  pos[:, [skel.body_index('calcn_r'), skel.body_index('calcn_l')]])[0, rear]
  # Standing rear foot: its hallux tip under the kneeling ankle (as the foot turns over
  # it moves back by about a foot's length, in the air).
  yaw_rear = fam._yaw(toe_out, rear)
  r_yaw = kinematics.rot_y(yaw_rear)
  xz_rear = tip[[0, 2]] - (r_yaw @ (geom.sole_in_calcn[rear, 4] - geom.heel_in_calcn[rear]))[[0, 2]]
  # Front foot: flat, under a shank leaning `front_lean_deg` forward at the bottom.
  r_pel_b = fam._pelvis_matrix(ctx, q_b)[0]
  hip_front = np.array([0.0, y_bottom, 0.0]) + r_pel_b @ geom.hip_in_pelvis[front]
  front_ankle_home = fam._ankle(geom, r_home, p_home)[front]
  thigh, shank = geom.thigh_length[front], geom.shank_length[front]
  lf = np.radians(params['front_lean_deg'])
  height = hip_front[1] - front_ankle_home[1]
  kf = lf + np.arccos(np.clip((height - shank * np.cos(lf)) / thigh, -1.0, 1.0))
  hip_fwd = shank * np.sin(lf) + thigh * np.sin(lf - kf)
  p_feet = p_home.copy()
  p_feet[front, 0] += hip_front[0] - hip_fwd - front_ankle_home[0]
  step = float(p_feet[front, 0] - (xz_rear[0] - geom.heel_in_calcn[rear, 0]))
  tr, tp = fam._static_feet(ctx, r_home, p_feet)
  # Pelvis: from the highest height both legs reach (TOP_KNEE_DEG knees, rear heel
  # TOP_HEEL_RISE_DEG up) to the kneeling height; sway fades out in the hold.
  r_pel = fam._pelvis_matrix(ctx, q_rad)
  rel = np.einsum('tij,sj->tsi', r_pel, geom.hip_in_pelvis)
  r40, p40, _ = stance_pose_sides(geom, np.array([rear]), xz_rear[None], np.array([yaw_rear]),
                                   np.array([-TOP_HEEL_RISE_DEG]))
  ankles = np.stack([fam._ankle(geom, r_home, p_feet)[front], p40[0] + r40[0] @ geom.talus_in_calcn[rear]])
  reach = geom.hip_to_ankle_at(np.radians([TOP_KNEE_DEG, TOP_KNEE_DEG]))
  # Standing, the pelvis is where both legs reach highest (a search between the
  # ankles), kneeling over the kneeling knee (x = 0).
  grid = np.linspace(ankles[1, 0], ankles[0, 0], 81) - geom.hip_in_pelvis[:, 0].mean()
  hips_xz = geom.hip_in_pelvis[[front, rear]][None, :, [0, 2]] + np.stack(
      [grid, np.zeros_like(grid)], -1)[:, None]
  horiz2 = np.sum((hips_xz - ankles[None, :, [0, 2]])**2, axis=-1)
  heights = (ankles[None, :, 1] + np.sqrt(np.maximum(reach[[front, rear]]**2 - horiz2, 1e-6))
             - geom.hip_in_pelvis[[front, rear], 1]).min(axis=1)
  x_top = float(grid[np.argmax(heights)])
  y_top = float(heights.max())
  y_top = max(y_top, y_bottom)
  sway = fam._sway(ctx, params, 0.004) * (1.0 - depth)[:, None]
  pelvis = np.stack([x_top * (1.0 - depth) + sway[:, 0], y_top + (y_bottom - y_top) * depth,
                     sway[:, 1]], -1)
  # Rear foot, first part of the way down (and last of the way up): toes on the floor,
  # heel rising so that the rear knee follows its design (as in `lunge`), frozen at
  # the depth where the foot starts to turn over.
  d_toes = np.minimum(depth, FLIP_DEPTH)
  knee_r = np.radians(TOP_KNEE_DEG) + (kneel[1] - np.radians(TOP_KNEE_DEG)) * d_toes
  pel_toes = np.stack([x_top * (1.0 - d_toes) + sway[:, 0], y_top + (y_bottom - y_top) * d_toes,
                       pelvis[:, 2]], -1)
  rise = heel_rise_needed(geom, np.full(num, rear), pel_toes + rel[:, rear],
                          np.broadcast_to(xz_rear, (num, 2)), np.full(num, yaw_rear),
                          knee_target=knee_r, dorsiflexion_max=np.full(num, np.radians(8.0)))
  rise = kinematics.smooth_envelope(rise, width=max(1, int(round(0.03 * ctx.fps))))
  r_t, p_t, m_t = stance_pose_sides(geom, np.full(num, rear), np.broadcast_to(xz_rear, (num, 2)),
                                     np.full(num, yaw_rear), -rise)
  # The toes roll without slipping while the heel rises (see `lunge`).
  both_r, both_p = fam._static_feet(ctx, r_home, p_feet)
  both_r[:, rear], both_p[:, rear] = r_t, p_t
  both_m = np.zeros((num, 2))
  both_m[:, rear] = m_t
  fam._roll_without_slip(ctx, both_r, both_p, both_m, np.ones((num, 2), bool))
  p_t = both_p[:, rear]
  # Kneeling foot: forward kinematics of the kneeling leg at the current pelvis.
  q_k = _with_rear(ctx, q_rad, params, kneel)
  q_k[:, [ctx.index('pelvis_tx'), ctx.index('pelvis_ty'), ctx.index('pelvis_tz')]] = pelvis
  pos, rot = kinematics.body_poses(skel, q_k, ctx.scales)
  calcn = skel.body_index(f'calcn_{kinematics.SIDES[rear]}')
  r_k, p_k = rot[:, calcn], pos[:, calcn]
  # Turning over: from the toes pose to the kneeling pose (b = 0 -> 1, minimum jerk in
  # time from where the descent passes FLIP_DEPTH to the bottom, and back on the way
  # up). The foot turns about its MTP joint centre (which stays put at first, so the
  # heel goes up and over instead of the toes into the floor), is lifted by 4 cm
  # (over b = 0-0.3, lowered over b = 0.6-1) and travels to the kneeling pose
  # (b = 0.3-1).
  grid = np.linspace(0.0, 1.0, 1001)
  s_flip = float(np.interp(FLIP_DEPTH, curves.minimum_jerk(grid), grid))
  t_a = t_down + s_flip * params['descend_s']
  t_b = t_top - s_flip * params['rise_s']
  b = curves.keyframe_timeline([t_a, t_bottom, t_up, t_b], [0.0, 1.0, 1.0, 0.0], t)
  go = curves.minimum_jerk((b - 0.3) / 0.7)
  omega = kinematics.log_rotation(r_k @ np.swapaxes(r_t, -1, -2))
  centre = p_t + np.einsum('tij,j->ti', r_t, geom.mtp_center_in_calcn[rear])
  turned = kinematics.exp_rotation(b[:, None] * omega)
  full = kinematics.exp_rotation(omega)
  tr[:, rear] = turned @ r_t
  rotated = centre + np.einsum('tij,tj->ti', turned, p_t - centre)
  rotated_full = centre + np.einsum('tij,tj->ti', full, p_t - centre)
  tp[:, rear] = rotated + go[:, None] * (p_k - rotated_full)
  tp[:, rear, 1] += 0.04 * curves.minimum_jerk(b / 0.3) * (1.0 - curves.minimum_jerk((b - 0.6) / 0.4))
  mtp = np.zeros((num, 2))
  mtp[:, rear] = (1.0 - b) * m_t + b * kneel[3]
  # Design (the IK's starting guess and reference): front leg from the two-segment
  # leg, rear leg blending into the kneeling angles.
  knee_f = np.radians(TOP_KNEE_DEG) + (kf - np.radians(TOP_KNEE_DEG)) * depth
  sf, sr = kinematics.SIDES[front], kinematics.SIDES[rear]
  deg[:, ctx.index(f'knee_angle_{sf}')] = np.degrees(knee_f)
  deg[:, ctx.index(f'hip_flexion_{sf}')] = np.degrees(knee_f - lf * depth)
  rear_deg = np.degrees(kneel)
  deg[:, ctx.index(f'knee_angle_{sr}')] = (1.0 - b) * np.degrees(knee_r) + b * rear_deg[1]
  deg[:, ctx.index(f'hip_flexion_{sr}')] = b * rear_deg[0]
  deg[:, ctx.index(f'ankle_angle_{sr}')] = b * rear_deg[2]
  return deg, pelvis, tr, tp, mtp, step, b


def make_kneeling(ctx: fam.Context, params: dict):
  """Half-kneeling: down, hold, up; see the module docstring."""
  num = ctx.num_frames
  duration = num / ctx.fps
  *_, nominal = _times(params)
  offset = params['window'] * max(0.0, nominal - duration)
  clip = dataclasses.replace(ctx, t=ctx.t + offset)
  deg, pelvis, tr, tp, mtp, step, turn_over = _design(clip, params)
  rear = params['kneel_side']
  # A foot turning over never enters the floor. Its target may be out of the leg's
  # reach for a moment (the ankle starts the turn near its dorsiflexion limit), and the
  # IK then leaves it lower than designed: a first solve finds where the foot would
  # come closer to the floor than TURN_CLEARANCE (sole points) or TOE_CLEARANCE (the
  # toes' dorsum) or enter it, and its target is
  # raised there (it is in the air) by a smooth envelope of the shortfall, rather than
  # the whole body being lifted or the toes dragging along the floor.
  moving = (turn_over > 0.0) & (turn_over < 1.0)
  if moving.any():
    pelvis_reach = fam._reach_lower(clip, deg, pelvis, tr, tp)
    q = np.radians(deg)
    q[:, [clip.index('pelvis_tx'), clip.index('pelvis_ty'), clip.index('pelvis_tz')]] = pelvis_reach
    first = fam._solve(clip, q, tr, tp, mtp=mtp)[1].q
    feet = kinematics.foot_contacts(clip.skel).foot
    pts = kinematics.contact_points(clip.skel, first, clip.scales)[:, feet == rear]
    _, rot = kinematics.body_poses(clip.skel, first, clip.scales)
    toes = rot[:, clip.skel.body_index(f'toes_{kinematics.SIDES[rear]}')]
    dorsum = pts[:, 4, 1] + toes[:, 1, 1] * TOE_THICKNESS  # hallux tip's dorsum height
    short = np.maximum(TURN_CLEARANCE - pts[..., 1].min(-1), TOE_CLEARANCE - dorsum)
    depth = np.where(moving, np.maximum(short, 0.0), 0.0)
    if depth.max() > 0.0:
      width = max(1, int(round(0.05 * clip.fps)))
      tp[:, rear, 1] += np.maximum(kinematics.smooth_envelope(depth, width=width), depth)
  extra = dict(time_offset_s=offset, step_length=step, knee_height_m=params['knee_height'])
  return fam._finish(clip, deg, pelvis, tr, tp, mtp=mtp, extra=extra)

"""Families in which the feet leave the floor: `stepping`, `jumping_jacks` and `jumping`.

Side-stepping or marching in place (lifted minimum-jerk foot paths, pelvis shifting
over the supporting foot), jumping jacks (hops between feet together and apart, arms
to overhead) and countermovement vertical jumps (ballistic flight of the pelvis,
`GRAVITY`); jumping jacks and jumps mark their airborne frames in the builders' info
(`flight`). Built with the shared helpers of `family_tools.py`; see README.md for
the sampled parameters.
"""

from __future__ import annotations

import numpy as np

from odah_tfds.motions import curves, kinematics
from odah_tfds.motions.family_tools import (Context, _add_noise, _ankle, _arm_pose,
                                            _base_degrees, _finish, _flat_feet, _hip_from_leg,
                                            _noise_params, _pelvis_from_hips, _pelvis_matrix,
                                            _roll_without_slip, _stand_params, _static_feet,
                                            _sway, _u)
from odah_tfds.motions.gait import hermite_fill, leg_height, stance_pose_sides

GRAVITY = kinematics.GRAVITY


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

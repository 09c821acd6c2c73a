"""Standing arm and trunk families, feet planted in a quiet stance.

Families: `arm_flexion`, `arm_abduction`, `reaching`, `trunk_flexion` and
`trunk_rotation`. Flat, static feet at the sampled width and the pelvis over them
with postural sway (`_quiet_stance`) under a designed upper body: arm raises over
repetitions (`_raise_params`, `_raise_amounts`), one-arm reaches to sampled targets,
forward or lateral trunk bending, axial trunk rotation. Built with the shared helpers
of `family_tools.py`; see README.md for the sampled parameters.
"""

from __future__ import annotations

import numpy as np

from odah_tfds.motions import curves, kinematics
from odah_tfds.motions.family_tools import (Context, _add_noise, _arm_pose, _base_degrees,
                                            _finish, _flat_feet, _noise_params, _rep_profile,
                                            _reps, _stand_params, _standing_pelvis,
                                            _static_feet, _sway, _u)


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

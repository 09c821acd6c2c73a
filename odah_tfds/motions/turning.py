"""Turning in place, the `turning` motion family.

Labs record turning in place as a test and as a task in its own right: the 180- and
360-degree turn tests (e.g. item 11 of the Berg Balance Scale, the turn of the
Timed Up and Go), step turns in place. The person stands, turns about the vertical
axis by a few steps and stands again. A clip is:

1. quiet stance (0.3-1.0 s), feet flat at a sampled width (0.12-0.22 m) and toe-out
   (0-6 degrees; more would eat the hip rotation range the turn needs, below);
2. a step turn of 90-330 degrees to the left or right (random) in 3-6 steps: the
   feet lift and are placed at new headings in alternation, the foot on the side of
   the turn first (it opens, the other follows). The foot headings advance by
   delta = turn / (steps - 1) per step (at most 66 degrees): the leading foot
   reaches delta, the other 2 delta, and so on, and the last step closes the feet
   side by side at the final heading. Feet stay on a circle about the vertical axis
   through the middle of the stance (a turn in place). Each step is a weight shift
   over the support foot (0.15-0.3 s, the pelvis moving 35-50 % of the way towards
   it) and a swing (0.45-0.75 s): minimum-jerk in heading, lifted by 3-7 cm
   (sin^2 profile) with the foot pitched 10 degrees toes-down about its toe tip, so
   the heel leaves first and lands last (as the `stepping` family's steps);
3. quiet stance again for the rest of the clip.

The pelvis heading is the mean of the two feet's headings (so the hips never need
more than delta / 2 + toe-out of rotation: the model's hip rotation range is
+-45 degrees, which bounds delta); the trunk and head (the model's torso) lead the
turn by 5-15 degrees of lumbar rotation while the body turns; arms swing (60 %,
shoulder flexion +-5-15 degrees opposite to the stepping leg, elbows a little more
bent) or hang relaxed (40 %).

Heading convention: the model's pelvis_rotation range is +-180 degrees, so a turn
cannot start at 0 and go on to 330. The clip is centred instead: the pelvis heading
over the clip's frames runs from -a to +a (a = half the heading change within the
clip), i.e. the subject faces +x halfway through what the clip shows of the turn.
A full 360-degree turn cannot be represented (it would need the pelvis rotation to
pass +-180 continuously), hence the 330-degree cap. A 360-degree turn test is
therefore shown as 330 degrees at most.

A clip shorter than the sequence (quiet stance, all steps, 0.3 s of stance after)
is a window of it, placed at random (`window`, as in `balance`): a 32-frame dataset
clip shows part of the turn. `time_offset_s` records where the window starts,
`turn_deg` the sampled turn (signed: + to the left), `clip_turn_deg` the heading
change of the pelvis within the clip.
"""

from __future__ import annotations

import numpy as np

from odah_tfds.motions import curves, kinematics
from odah_tfds.motions import family_tools as fam

# pylint: disable=protected-access  (the shared family helpers of family_tools.py)

MIN_TURN_DEG, MAX_TURN_DEG = 90.0, 330.0
MAX_STEP_DEG = 66.0  # heading change between the feet in double stance
ARM_STYLES = ('swing', 'relaxed')
ARM_PROBABILITY = (0.6, 0.4)


_u = fam._u  # a uniform float in [lo, hi)


def sample_turning(rng) -> dict:
  """Parameters of a turning clip (seconds, degrees, metres)."""
  p = fam._stand_params(rng, width=(0.12, 0.22), toe_out=(0.0, 6.0))
  turn = _u(rng, MIN_TURN_DEG, MAX_TURN_DEG)
  n_min = max(3, int(np.ceil(1.0 + turn / MAX_STEP_DEG)))
  n_max = min(6, max(n_min, int(np.ceil(1.0 + turn / 45.0))))
  direction = 1.0 if rng.random() < 0.5 else -1.0  # +: to the left (+x towards -z)
  p.update(
      turn_deg=direction * turn, steps=int(rng.integers(n_min, n_max + 1)),
      quiet_s=_u(rng, 0.3, 1.0), step_s=_u(rng, 0.45, 0.75), shift_s=_u(rng, 0.15, 0.3),
      shift_fraction=_u(rng, 0.35, 0.5), clearance=_u(rng, 0.03, 0.07),
      lead_deg=_u(rng, 5.0, 15.0), arms=str(rng.choice(ARM_STYLES, p=ARM_PROBABILITY)),
      arm_swing_deg=_u(rng, 5.0, 15.0), window=_u(rng, 0.0, 1.0),
      **fam._noise_params(rng, amount=(0.5, 1.0)))
  return p


def _plan(params: dict):
  """Steps [(side, start, end, old heading, new heading)] (seconds of the sequence,
  degrees relative to the start) and the sequence's nominal end."""
  n = params['steps']
  turn = params['turn_deg']
  delta = turn / (n - 1)
  lead = 1 if turn > 0 else 0  # turning left: the left foot opens first
  heading = [0.0, 0.0]
  now = params['quiet_s']
  steps = []
  for k in range(n):
    side = lead if k % 2 == 0 else 1 - lead
    new = turn if k == n - 1 else (k + 1) * delta
    start = now + params['shift_s']
    steps.append((side, start, start + params['step_s'], heading[side], new))
    heading[side] = new
    now = start + params['step_s']
  return steps, now + 0.3


def make_turning(ctx: fam.Context, params: dict):
  """Turning in place by step turns; see the module docstring."""
  geom, num = ctx.geom, ctx.num_frames
  duration = num / ctx.fps
  steps, nominal = _plan(params)
  offset = params['window'] * max(0.0, nominal - duration)
  t = ctx.t + offset
  r_home, p_home = fam._flat_feet(ctx, params['stance_width'], params['toe_out_deg'])
  centre = 0.5 * (p_home[0] + p_home[1])
  centre[1] = 0.0
  # Foot headings (degrees) over time, and the lift of the swinging foot.
  heading = np.zeros((num, 2))
  lift = np.zeros((num, 2))
  arm = np.zeros((num, 2))  # + : that side's arm forward
  shift_t, shift_v = [0.0], [np.zeros(2)]
  current = [0.0, 0.0]
  for side, t0, t1, old, new in steps:
    s = np.clip((t - t0) / (t1 - t0), 0.0, 1.0)
    w = curves.minimum_jerk((s - 0.15) / 0.7)  # turns only once the foot is up
    during = (t >= t0) & (t <= t1)
    heading[t >= t0, side] = old + (new - old) * w[t >= t0]
    bump = np.where(during, np.sin(np.pi * s)**2, 0.0)
    lift[:, side] = np.maximum(lift[:, side], bump)
    arm[:, side] -= bump
    arm[:, 1 - side] += bump
    # Weight over the support foot (its position at the step's start) before the foot
    # lifts, back to the middle as it lands.
    support = 1 - side
    h_sup = np.radians(current[support])
    current[side] = new
    sup = centre + kinematics.rot_y(h_sup) @ (p_home[support] - centre)
    sup_xz = (sup - centre)[[0, 2]]
    over = params['shift_fraction'] * sup_xz
    shift_t += [t0 - params['shift_s'] + 1e-3, t0, t0 + 0.3 * (t1 - t0), t1 + 0.25]
    shift_v += [shift_v[-1], over, over, np.zeros(2)]
  # Keyframe times must increase: drop keys that a short shift made coincide.
  keys_t, keys_v = [shift_t[0]], [shift_v[0]]
  for a, b in zip(shift_t[1:], shift_v[1:]):
    if a > keys_t[-1] + 1e-6:
      keys_t.append(a)
      keys_v.append(b)
  shift = curves.keyframe_timeline(keys_t, np.array(keys_v), t)  # (T, 2) x, z
  # Foot targets: the home poses turned about the vertical axis through the centre;
  # the swinging foot pitched toes-down about its toe tip and lifted.
  rad = np.radians(heading)
  rot = kinematics.rot_y(rad)  # (T, 2, 3, 3)
  tr = rot @ r_home[None]
  tp = centre + np.einsum('tsij,sj->tsi', rot, p_home - centre)
  for f in (0, 1):
    up = lift[:, f] > 0.0
    if not up.any():
      continue
    bump = lift[up, f]
    tip = tp[up, f] + np.einsum('tij,j->ti', tr[up, f], geom.sole_in_calcn[f, 4])
    axis = tr[up, f][:, :, 2]
    pitch = kinematics.axis_rotation(axis, np.radians(-10.0 * bump))
    tr[up, f] = pitch @ tr[up, f]
    tp[up, f] = tip + np.einsum('tij,tj->ti', pitch, tp[up, f] - tip)
    tp[up, f, 1] += params['clearance'] * bump
  # Body heading: the mean of the feet's; centred on the clip (see the docstring).
  body = heading.mean(axis=1)
  centre_deg = 0.5 * (body.min() + body.max())
  active = curves.minimum_jerk((t - steps[0][1] + 0.2) / 0.5) * (
      1.0 - curves.minimum_jerk((t - steps[-1][2] + 0.3) / 0.6))
  direction = np.sign(params['turn_deg'])
  deg = fam._base_degrees(ctx, params)
  deg[:, ctx.index('lumbar_rotation')] += direction * params['lead_deg'] * active
  if params['arms'] == 'swing':
    for k, s in enumerate(kinematics.SIDES):
      deg[:, ctx.index(f'arm_flex_{s}')] += params['arm_swing_deg'] * arm[:, k]
      deg[:, ctx.index(f'elbow_flex_{s}')] += 10.0 * active
  fam._add_noise(ctx, deg, params)
  # Pelvis orientation: the body heading about the vertical, after the designed tilt,
  # list and rotation (noise) in the body's own frame.
  it, il, ir = (ctx.index(n) for n in ('pelvis_tilt', 'pelvis_list', 'pelvis_rotation'))
  local = kinematics.pelvis_matrix(*np.radians(deg[:, [it, il, ir]]).T)
  world = kinematics.rot_y(np.radians(body - centre_deg)) @ local
  tilt, lst, yaw = kinematics.pelvis_angles(world)
  deg[:, it], deg[:, il], deg[:, ir] = np.degrees(tilt), np.degrees(lst), np.degrees(yaw)
  # The whole scene turned by -centre_deg so that the pelvis heading is centred.
  turn_all = kinematics.rot_y(np.radians(-centre_deg))
  tr = turn_all @ tr
  tp = np.einsum('ij,tsj->tsi', turn_all, tp - centre) + centre
  shift3 = np.stack([shift[:, 0], np.zeros(num), shift[:, 1]], -1) @ turn_all.T
  sway = fam._sway(ctx, params, 0.004)
  # Height: both legs (the swinging one with its foot on the floor) reach with ~8 deg
  # knees (as in `stepping`).
  r_pel = fam._pelvis_matrix(ctx, np.radians(deg))
  rel = np.einsum('tij,sj->tsi', r_pel, geom.hip_in_pelvis)
  pelvis = np.stack([centre[0] + shift3[:, 0] + sway[:, 0], np.zeros(num),
                     centre[2] + shift3[:, 2] + sway[:, 1]], -1)
  flat_p = tp.copy()
  flat_p[..., 1] = p_home[None, :, 1]
  hip_xz = pelvis[:, None, [0, 2]] + rel[..., [0, 2]]
  ankle = fam._ankle(geom, tr, flat_p)
  reach = geom.hip_to_ankle_at(np.full((num, 2), np.radians(8.0)))
  horiz2 = np.sum((hip_xz - ankle[..., [0, 2]])**2, axis=-1)
  pelvis[:, 1] = kinematics.lower_envelope(
      (ankle[..., 1] + np.sqrt(np.maximum(reach**2 - horiz2, 1e-6)) - rel[..., 1]).min(1),
      width=max(1, int(round(0.1 * ctx.fps))))
  # Legs' starting guesses: hips rotated to their feet.
  for k, s in enumerate(kinematics.SIDES):
    sign = 1.0 if k == 0 else -1.0
    deg[:, ctx.index(f'hip_rotation_{s}')] = sign * (heading[:, k] - body)
  extra = dict(time_offset_s=offset, clip_turn_deg=float(body[-1] - body[0]))
  return fam._finish(ctx, deg, pelvis, tr, tp, extra=extra)

"""Single-leg balance (one-leg stance), the `balance` motion family.

Biomechanics labs record single-leg stance as a balance test (unipedal stance,
stork / flamingo test, the single-leg conditions of the Balance Error Scoring
System) and as a calibration-like trial; the Pose2Sim demo capture that this
project is measured on is one: a person on one leg, arms held out to the sides,
the free leg lifted and moving, the trunk leaning and correcting. A clip is:

1. quiet double stance (0.2-0.8 s);
2. a weight shift (0.5-0.9 s, minimum jerk) that brings the whole-body centre of
   mass over the support foot (side random), the arms rising to their balance
   posture meanwhile;
3. the free foot lifting (0.8-1.3 s, minimum jerk; it starts when 85 % of the shift
   is done), rising before it travels so that it never drags on the floor: a foot
   that ends toes-down (stork, knee up) peels off heel first about its toes and then
   travels up and along to the posture; a leg that goes forward or to the side swings
   there in joint space (an arc about the hip) with its foot first raised 4 cm;
4. a hold on one leg for the rest of the clip, with slow corrections: the free leg
   wobbles, the pelvis lists, tilts and turns by a few degrees, the trunk bends
   sideways while the arms see-saw to stay level, the centre of mass sways over the
   foot;
5. optionally (p = 0.3, in clips long enough for two holds of >= 1 s, i.e. about
   6.5 s or more) a switch: the free foot comes down where it took off (the lift
   reversed: a toes-down foot lands toes first and rolls flat), the weight crosses
   to it (0.7-1.1 s) and the other leg lifts into a posture of the same test.

A clip shorter than its sequence (quiet stance, shift, lift and a hold of `hold_s`,
1-4 s) shows a window of it, placed at random (`window`): a 32-frame dataset clip
starts in the quiet stance, the shift, the lift or the hold. `time_offset_s` records
where the window starts, `single_stance_frames` the frames on one leg (free foot
fully lifted) as [first, end, support side (0 = right)].

Free-leg postures, from the lab tests (angles of the free leg relative to the
pelvis, degrees):

* `stork`: knee bent behind (thigh near vertical): hip flexion 0-20, knee 60-100,
  foot plantarflexed 5-30 (relaxed, hanging back);
* `knee_up`: knee raised in front: hip flexion 40-80, knee 60-100, the shank hanging
  from vertical to 35 back (knee - hip 0-35), foot relaxed (plantarflexed 0-25)
  (Trendelenburg test, marching-type single-leg stance);
* `forward`: leg extended forward: hip flexion 20-45, knee 5-20 (anterior reach);
* `side`: leg extended to the side: hip abduction 15-35, knee 5-20, a little flexion.

In the sagittal postures the free leg also abducts 2-8 degrees, so that the feet
and legs pass clear of each other; the hip rotates -10 (external) to +5. The
posture's main angle (knee for `stork`, hip flexion for `knee_up` / `forward`,
abduction for `side`) is then adjusted, if needed, so that the free foot's lowest
sole point stays 5-40 cm above the floor over the whole hold, wobble included.

Arms (why this split): 60 % held out to the sides (shoulder abduction 60-100, a
little forward flexion 0-20, elbows 0-30, palms down, corrective waving of 5-20
degrees, the arms see-sawing against the trunk's sideways corrections): the free
form of the test and the posture of the real capture this project is evaluated on,
so it should dominate. 30 % hands on the hips (iliac crests) for the whole clip:
the standardised protocols (stork test, BESS) prescribe it. 10 % arms forward
(shoulder flexion 70-95, waving), seen in clinical single-leg stance and when
subjects reach for balance.

Mechanics: the support foot stays flat and static on the floor (its calcaneus
target is fixed; the legs are solved by IK as in the other families, so it cannot
slide). The pelvis is placed so that the whole-body centre of mass (segment masses
after de Leva 1996, at the model's segment mass centres, from forward kinematics
of the designed pose) is over a point 2-5 cm in front of the support ankle, plus
slow sway (0.3-0.8 cm standard deviation, 0.1-0.6 Hz): the pelvis moves against
the free leg's and trunk's excursions, as a balancing person's does. Its height is
that of the support leg with a soft knee (5-12 degrees), lowered where a foot still
on (or leaving) the floor could not be reached with a straight knee. In the hold
the free foot's target is the forward kinematics of the designed free leg, so the
IK reproduces the design; the pelvis list raises the free side by -1 to 4 degrees
(mean), the trunk leans 0-4 degrees over the support foot.

`balance_reach` (`sample_balance_reach`) is the same clip with the postures of the reach
tests: the trunk tipped forward, the pelvis listing up to 28 degrees, the free leg mostly
reaching back, the lean breathing in and out; `balance`'s clips do not change with it.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from odah_tfds.motions import curves, kinematics
from odah_tfds.motions import family_tools as fam
from odah_tfds.motions.gait import leg_height

# pylint: disable=protected-access  (the shared family helpers of family_tools.py)

POSTURES = ('stork', 'knee_up', 'forward', 'side')
POSTURE_PROBABILITY = (0.3, 0.3, 0.2, 0.2)
ARM_STYLES = ('out', 'hips', 'forward')
ARM_PROBABILITY = (0.6, 0.3, 0.1)
SWITCH_PROBABILITY = 0.3
MIN_CLEARANCE = 0.05  # m, lowest free-foot sole point above the floor during a hold
MAX_CLEARANCE = 0.40  # m
MIN_HOLD_S = 1.0  # s, shortest hold on either leg when the clip switches legs

# `balance_reach` (see `sample_balance_reach`): the free leg mostly reaching back, the
# trunk leaning; the foot may rise higher (a leg reaching back with the trunk tipped
# forward lifts it 0.4-0.8 m).
REACH_POSTURES = ('back', 'side', 'forward')
REACH_POSTURE_PROBABILITY = (0.5, 0.25, 0.25)
# 'hip_out' (1.5.0): one hand on the hip, the other arm out (the stork test's hands
# with a free arm). 'bent_out' (1.6.0): one arm out with the elbow bent 60-120 deg and the
# humerus turned out, so the forearm points forward to up (a "goalpost" arm), the other
# arm out: the real capture's right arm, which its four-camera reference shows abducted
# 50-63 deg with the elbow at 60-106 and the humerus turned out by 20-37 while the other
# arm is held out (1.5.0 has no such frame: the elbow was 48 deg off; MODEL_CARD.md).
REACH_ARM_STYLES = ('out', 'hips', 'forward', 'hip_out', 'bent_out')
REACH_ARM_PROBABILITY = (0.35, 0.1, 0.1, 0.15, 0.3)
REACH_MAX_CLEARANCE = 0.80  # m

# Segment mass fractions (de Leva 1996, males, Table 4) on the project model's bodies:
# pelvis = lower trunk; torso = head + upper and middle trunk; forearm split between
# ulna and radius; the foot on the calcaneus. Sums to 1.
_MASS_FRACTION = {
    'pelvis': 0.1117, 'torso': 0.3923, 'humerus': 0.0271, 'ulna': 0.0081, 'radius': 0.0081,
    'hand': 0.0061, 'femur': 0.1416, 'tibia': 0.0433, 'calcn': 0.0137,
}

# Per posture: the angle that sets the free foot's height, and the range (deg) within
# which `_adjust_postures` may move it.
_MAIN_ANGLE = {
    'stork': ('knee_deg', (45.0, 110.0)),
    'knee_up': ('hip_flexion_deg', (30.0, 95.0)),
    'forward': ('hip_flexion_deg', (15.0, 65.0)),
    'side': ('hip_abduction_deg', (10.0, 37.0)),
    'back': ('knee_deg', (5.0, 110.0)),
}
_FOREFOOT = (2, 3, 4, 5)  # sole points under the metatarsal heads and toes
_LEG_NAMES = ('hip_flexion', 'hip_adduction', 'hip_rotation', 'knee_angle', 'ankle_angle')


_u = fam._u  # a uniform float in [lo, hi)


def _sample_posture(rng, kind: str) -> dict:
  """Free-leg posture (degrees) of one lab single-leg stance."""
  if kind == 'stork':
    hip, knee, abd, ankle = _u(rng, 0, 20), _u(rng, 60, 100), _u(rng, 2, 8), _u(rng, -30, -5)
  elif kind == 'knee_up':
    # The shank hangs from the raised knee: vertical to 35 degrees back (knee - hip).
    hip = _u(rng, 40, 80)
    knee = _u(rng, max(60.0, hip), min(100.0, hip + 35.0))
    abd, ankle = _u(rng, 2, 8), _u(rng, -25, 0)
  elif kind == 'forward':
    hip, knee, abd, ankle = _u(rng, 20, 45), _u(rng, 5, 20), _u(rng, 2, 8), _u(rng, -20, 5)
  elif kind == 'side':
    hip, knee, abd, ankle = _u(rng, 0, 15), _u(rng, 5, 20), _u(rng, 15, 35), _u(rng, -20, 0)
  elif kind == 'back':
    hip, knee, abd, ankle = _u(rng, -20, 5), _u(rng, 10, 60), _u(rng, 2, 8), _u(rng, -30, 0)
  else:
    raise ValueError(f'unknown balance posture {kind!r}; known: {POSTURES + REACH_POSTURES}')
  return dict(kind=kind, hip_flexion_deg=hip, hip_abduction_deg=abd,
              hip_rotation_deg=_u(rng, -10.0, 5.0), knee_deg=knee, ankle_deg=ankle)


def sample_balance(rng) -> dict:
  """Parameters of a single-leg balance clip (seconds, degrees, metres)."""
  p = fam._stand_params(rng, width=(0.10, 0.22), toe_out=(0.0, 12.0))
  kind = str(rng.choice(POSTURES, p=POSTURE_PROBABILITY))
  p.update(
      quiet_s=_u(rng, 0.2, 0.8), shift_s=_u(rng, 0.5, 0.9), lift_s=_u(rng, 0.8, 1.3),
      hold_s=_u(rng, 1.0, 4.0), support_side=int(rng.integers(2)),  # 0: right leg
      postures=[_sample_posture(rng, kind), _sample_posture(rng, kind)],
      support_knee_deg=_u(rng, 5.0, 12.0), cop_forward=_u(rng, 0.02, 0.05),
      sway_m=_u(rng, 0.003, 0.008), leg_wobble_deg=_u(rng, 1.0, 3.5),
      pelvis_hike_deg=_u(rng, -1.0, 4.0), pelvis_tilt_deg=_u(rng, -3.0, 3.0),
      pelvis_rotation_deg=_u(rng, -3.0, 3.0), pelvis_wobble_deg=_u(rng, 0.5, 1.5),
      trunk_side_lean_deg=_u(rng, 0.0, 4.0), trunk_correction_deg=_u(rng, 2.0, 5.0),
      trunk_extension_deg=_u(rng, -3.0, 3.0),
      arms=str(rng.choice(ARM_STYLES, p=ARM_PROBABILITY)),
      arm_out_abduction_deg=_u(rng, 60.0, 100.0), arm_out_flexion_deg=_u(rng, 0.0, 20.0),
      arm_forward_flexion_deg=_u(rng, 70.0, 95.0), arm_elbow_deg=_u(rng, 0.0, 30.0),
      arm_wave_deg=_u(rng, 5.0, 20.0), arm_wave_hz=_u(rng, 0.4, 1.0),
      switch=bool(rng.random() < SWITCH_PROBABILITY), lower_s=_u(rng, 0.5, 0.8),
      cross_s=_u(rng, 0.7, 1.1), window=_u(rng, 0.0, 1.0), **fam._noise_params(rng))
  return p


def sample_balance_reach(rng) -> dict:
  """Parameters of a single-leg balance clip with reach and trunk lean (the
  `balance_reach` family): the `balance` clip's timeline and mechanics, with the
  postures of the reach tests that labs record (Y-balance and star-excursion tests,
  single-leg deadlift, T-balance) instead of the upright stance of the stork test.

  Why: on the real capture this project is measured on (a person balancing on one
  leg), the four-camera reference, turned to face +x as ODAH's subjects do, has 5-95 %
  ranges of pelvis tilt -28..5 deg, pelvis list -40..7 (the free side up, the support
  hip abducted as much), lumbar bending -17..8 and lumbar extension 0..25, against
  odah/lab 1.3.0 training frames' 1-99 % of -29..7, -7..6, -5..5 and -23..5 (`balance`
  leans the trunk 0-4 deg); its frames were a median 15.8 deg (mean over 23 angles)
  from the nearest training frame (benchmarks/sim_to_real.py, 2026-12-07).

  On top of `sample_balance`'s draws (which it leaves as they are), in degrees:
  * free leg: 'back' 50 % (the thigh 20-45 behind the vertical in the world, hip
    flexion at least -20, as the model's -30 bound leaves the IK no room; knee 10-60,
    adjusted as `balance`'s postures are, up to REACH_MAX_CLEARANCE), 'side' 25 %,
    'forward' 25 %; no stork (a knee bent behind a tipped pelvis turns the foot over);
  * pelvis tipped forward over the support hip 3-30 (`pelvis_tilt_deg` -30..-3), the
    lumbar spine extending back by -10 .. 0.8 x that (the chest held up, as the
    reference shows);
  * pelvis list (free side up) -5..28 (more tips the support leg past the subtalar
    range: the sole's edge lifts), the lumbar spine bending over the support foot by
    -0.5..0.8 x the list (against it or with it: the reference bends with it) plus
    -6..6; stronger corrections (3-8) and pelvis turns (-10..10);
  * arms: out 35 % (flexion -40..20: also swept back), hips 10 %, forward 10 %, one
    hand on the hip (elbow 70-110) and the other arm out 15 % (either side), one arm
    out and bent 30 % (either side: abduction 40-90, flexion -20..30, elbow 60-120, the
    humerus turned out by 10-70, so the forearm points forward to up) with the other
    arm out; the humerus of an 'out' arm turned -30..30 further;
  * the lift takes 1.0-1.6 s (`balance`: 0.8-1.3);
  * the reach: the lean (tilt, extension, list, side bend) breathes in and out by
    `reach_depth` (0-60 %) of itself with a 2-4 s period, as a reaching subject goes
    out and comes back.
  """
  p = sample_balance(rng)
  kind = str(rng.choice(REACH_POSTURES, p=REACH_POSTURE_PROBABILITY))
  tilt = _u(rng, -30.0, -3.0)
  hike = _u(rng, -5.0, 28.0)
  postures = [_sample_posture(rng, kind), _sample_posture(rng, kind)]
  for posture in postures:
    if kind == 'back':  # the thigh 20-45 deg behind the vertical in the world
      posture['hip_flexion_deg'] = max(-20.0, -_u(rng, 20.0, 45.0) - tilt)
  p.update(
      postures=postures,
      lift_s=_u(rng, 1.0, 1.6), pelvis_tilt_deg=tilt,
      trunk_extension_deg=_u(rng, -10.0, 0.8 * abs(tilt)),
      pelvis_hike_deg=hike, trunk_side_lean_deg=_u(rng, -0.5, 0.8) * hike + _u(rng, -6.0, 6.0),
      trunk_correction_deg=_u(rng, 3.0, 8.0), pelvis_rotation_deg=_u(rng, -10.0, 10.0),
      arms=str(rng.choice(REACH_ARM_STYLES, p=REACH_ARM_PROBABILITY)),
      arm_out_flexion_deg=_u(rng, -40.0, 20.0), arm_rotation_deg=_u(rng, -30.0, 30.0),
      reach_depth=_u(rng, 0.0, 0.6), reach_period_s=_u(rng, 2.0, 4.0),
      reach_phase=_u(rng, 0.0, 1.0), max_clearance=REACH_MAX_CLEARANCE)
  # Drawn last, so that every other parameter is 1.4.0's for the same seed (1.5.0's hip
  # hand, then 1.6.0's bent arm; the arm style itself may differ, as its probabilities
  # did). What the generator draws after the motion (odah's 32-frame window) moves.
  p.update(hip_hand_side=int(rng.integers(2)), hip_hand_elbow_deg=_u(rng, 70.0, 110.0))
  p.update(bent_arm_side=int(rng.integers(2)), bent_arm_abduction_deg=_u(rng, 40.0, 90.0),
           bent_arm_flexion_deg=_u(rng, -20.0, 30.0), bent_arm_elbow_deg=_u(rng, 60.0, 120.0),
           bent_arm_rotation_deg=_u(rng, -70.0, -10.0))
  return p


def _lean_profile(params: dict, t) -> np.ndarray:
  """(T,) factor on the trunk and pelvis lean: 1 for `balance`; for `balance_reach`
  between 1 - reach_depth and 1, periodic (the reach going out and coming back)."""
  depth = params.get('reach_depth', 0.0)
  if not depth:
    return np.ones_like(t)
  cycle = np.cos(2.0 * np.pi * (t / params['reach_period_s'] + params['reach_phase']))
  return 1.0 - depth * 0.5 * (1.0 + cycle)


@dataclasses.dataclass(frozen=True)
class _Plan:
  """Timeline of a clip on the sequence's time axis (seconds; the clip's first frame
  is at `offset`)."""

  offset: float
  weight_keys: tuple  # ((time, weight), ...): +1 over the right foot, -1 over the left
  lift_keys: tuple  # per leg ((time, lift amount 0..1), ...)
  arm_keys: tuple  # ((time, arm raise 0..1), ...)
  holds: tuple  # ((free leg, start, end), ...) fully lifted intervals
  switch_at: float | None  # time the first free foot starts down, if the clip switches


def _plan(params: dict, duration: float) -> _Plan:
  """Event times. A clip too short for the whole sequence (quiet stance, shift, lift
  and a hold of `hold_s`) shows a window of it, placed by `window`."""
  free = 1 - params['support_side']
  sign = 1.0 if params['support_side'] == 0 else -1.0
  t_shift = params['quiet_s']
  t_up = t_shift + 0.85 * params['shift_s']
  t_hold = t_up + params['lift_s']
  weight = [(t_shift, 0.0), (t_shift + params['shift_s'], sign)]
  lifts = [[], []]
  lifts[free] = [(t_up, 0.0), (t_hold, 1.0)]
  arms = ((t_shift, 0.0), (t_hold, 1.0))
  switch_len = params['lower_s'] + 0.85 * params['cross_s'] + params['lift_s']
  first_hold = min(params['hold_s'], duration - t_hold - switch_len - MIN_HOLD_S)
  if params['switch'] and first_hold >= MIN_HOLD_S:
    t_down = t_hold + first_hold
    t_land = t_down + params['lower_s']
    t_up2 = t_land + 0.85 * params['cross_s']
    t_hold2 = t_up2 + params['lift_s']
    lifts[free] += [(t_down, 1.0), (t_land, 0.0)]
    lifts[1 - free] = [(t_up2, 0.0), (t_hold2, 1.0)]
    weight += [(t_land, sign), (t_land + params['cross_s'], -sign)]
    holds = ((free, t_hold, t_down), (1 - free, t_hold2, max(duration, t_hold2 + MIN_HOLD_S)))
    return _Plan(0.0, tuple(weight), tuple(map(tuple, lifts)), arms, holds, t_down)
  nominal = t_hold + params['hold_s']
  offset = params['window'] * max(0.0, nominal - duration)
  end = max(offset + duration, t_hold + MIN_HOLD_S)
  return _Plan(offset, tuple(weight), tuple(map(tuple, lifts)), arms, ((free, t_hold, end),),
               None)


def _timeline(keys, t) -> np.ndarray:
  if not keys:
    return np.zeros_like(t)
  return curves.keyframe_timeline([k[0] for k in keys], [k[1] for k in keys], t)


def _bounded_noise(seed: int, t, channels: int, min_hz: float, max_hz: float) -> np.ndarray:
  """(T, channels) smooth noise with |value| <= 1 (3 terms of normalised weights)."""
  rng = np.random.default_rng(seed)
  return curves.smooth_noise(rng, t, channels, 1.0 / np.sqrt(6.0), min_hz=min_hz, max_hz=max_hz)


def center_of_mass(skel, q, scales=None) -> np.ndarray:
  """(..., 3) whole-body centre of mass of poses q (..., C) (de Leva 1996 fractions)."""
  pos, rot = kinematics.body_poses(skel, q, scales)
  centres = np.asarray(skel.body_mass_centers, dtype=np.float64)
  if scales is not None:
    centres = centres * kinematics.check_scales(skel, scales)
  weights = np.array([_MASS_FRACTION.get(name if name in ('pelvis', 'torso')
                                         else name.rsplit('_', 1)[0], 0.0)
                      for name in skel.body_names])
  world = pos + np.einsum('...bij,bj->...bi', rot, centres)
  return np.einsum('...bi,b->...i', world, weights / weights.sum())


def _design(ctx: fam.Context, params: dict, plan: _Plan, postures) -> dict:
  """Designed coordinates (degrees), pelvis translation and foot poses at ctx.t
  (times on the sequence's axis)."""
  skel, geom, t, num = ctx.skel, ctx.geom, ctx.t, ctx.num_frames
  idx = ctx.index
  seed = params['noise_seed']
  weight = _timeline(plan.weight_keys, t)
  w_right, w_left = np.clip(weight, 0.0, 1.0), np.clip(-weight, 0.0, 1.0)
  single = w_right + w_left
  lift = np.stack([_timeline(k, t) for k in plan.lift_keys], -1)  # (T, 2)
  arm = _timeline(plan.arm_keys, t)
  deg = fam._base_degrees(ctx, params)

  # Trunk and pelvis: a mean posture on one leg plus corrections, faded in with the
  # weight shift. `correction` (|c| <= 1, 0.2-0.7 Hz) is the common balance signal:
  # the trunk bends with it, the arms see-saw with it. The wobble amplitudes are about
  # standard deviations (peaks <= 2.4 x).
  correction = _bounded_noise(seed + 2, t, 1, 0.2, 0.7)[:, 0]
  wobble = _bounded_noise(seed + 3, t, 4, 0.15, 0.6)
  lean = _lean_profile(params, t)  # 1 for `balance`
  deg[:, idx('pelvis_list')] += params['pelvis_hike_deg'] * lean * weight  # + lifts the left side
  deg[:, idx('pelvis_tilt')] += params['pelvis_tilt_deg'] * lean * single
  deg[:, idx('pelvis_rotation')] += params['pelvis_rotation_deg'] * weight
  for k, name in enumerate(('pelvis_list', 'pelvis_tilt', 'pelvis_rotation')):
    deg[:, idx(name)] += 2.4 * params['pelvis_wobble_deg'] * wobble[:, k] * single
  # + bends the trunk to the right: lean over the support foot.
  deg[:, idx('lumbar_bending')] += (params['trunk_side_lean_deg'] * lean * weight
                                    + params['trunk_correction_deg'] * correction * single)
  deg[:, idx('lumbar_extension')] += (params['trunk_extension_deg'] * lean
                                      + 2.0 * wobble[:, 3]) * single

  # Arms: hands on the hips throughout, or raised out / forward during the shift and
  # lift, waving in the hold (see-saw: the right arm rises as the trunk bends right,
  # the left one falls, which keeps them level in the world).
  # 'hip_out' (`balance_reach`): the side `hip_hand_side` as 'hips', the other 'out'; the
  # hip hands of `balance_reach` bend the elbow by `hip_hand_elbow_deg`, `balance`'s by 95.
  # 'bent_out' (`balance_reach`): the side `bent_arm_side` out with the elbow bent, the
  # other 'out'.
  styles = [params['arms']] * 2
  if params['arms'] == 'hip_out':
    styles = ['out', 'out']
    styles[params['hip_hand_side']] = 'hips'
  elif params['arms'] == 'bent_out':
    styles = ['out', 'out']
    styles[params['bent_arm_side']] = 'bent_out'
  waves = _bounded_noise(seed + 4, t, 4, 0.5 * params['arm_wave_hz'], params['arm_wave_hz'])
  for k, (s, style) in enumerate(zip(kinematics.SIDES, styles)):
    if style == 'hips':
      fam._arm_pose(deg, ctx, 'hips', None, sides=(s,))
      if 'hip_hand_elbow_deg' in params:
        deg[:, idx(f'elbow_flex_{s}')] = params['hip_hand_elbow_deg']
      continue
    see_saw = 1.0 if k == 0 else -1.0
    wave = params['arm_wave_deg'] * (0.7 * see_saw * correction + 0.3 * waves[:, k]) * single
    rest_abd = params['arm_abduction_deg']
    elbow = params['arm_elbow_deg']
    if style == 'out':
      abduction = rest_abd + (params['arm_out_abduction_deg'] + wave - rest_abd) * arm
      flexion = (params['arm_out_flexion_deg'] + 0.4 * params['arm_wave_deg'] * waves[:, 2 + k]
                 * single) * arm
    elif style == 'bent_out':  # raised out and turned, waving half as much as 'out'
      abduction = rest_abd + (params['bent_arm_abduction_deg'] + 0.5 * wave - rest_abd) * arm
      flexion = params['bent_arm_flexion_deg'] * arm
      elbow = params['bent_arm_elbow_deg']
    else:  # forward
      abduction = rest_abd + (8.0 + 0.5 * wave - rest_abd) * arm
      flexion = (params['arm_forward_flexion_deg'] + 0.7 * params['arm_wave_deg']
                 * waves[:, 2 + k] * single) * arm
    deg[:, idx(f'arm_add_{s}')] = -abduction
    deg[:, idx(f'arm_flex_{s}')] = flexion
    if style == 'bent_out':  # turned out by its own draw, which points the forearm up
      deg[:, idx(f'arm_rot_{s}')] = params['bent_arm_rotation_deg'] * arm
    else:  # above ~80 degrees of abduction the humerus rotates externally
      deg[:, idx(f'arm_rot_{s}')] = (-50.0 * curves.minimum_jerk((abduction - 80.0) / 80.0)
                                     + params.get('arm_rotation_deg', 0.0) * arm)
    deg[:, idx(f'elbow_flex_{s}')] += (elbow - params['elbow_deg']) * arm
    deg[:, idx(f'pro_sup_{s}')] += (90.0 - params['pro_sup_deg']) * arm
  fam._add_noise(ctx, deg, params)

  # Legs: support legs with a soft knee, free legs in their posture with wobble.
  support_w = np.stack([w_right, w_left], -1)
  knee_support = 7.0 + (params['support_knee_deg'] - 7.0) * support_w  # (T, 2)
  lifted_deg = deg.copy()  # both legs in their free posture: the lifted foot poses
  for k, s in enumerate(kinematics.SIDES):
    pose = postures[k]
    leg_wobble = _bounded_noise(seed + 5 + k, t, 5, 0.15, 0.7)
    amp = 2.4 * params['leg_wobble_deg'] * np.array([1.0, 0.6, 0.6, 1.2, 1.5])
    free = np.array([pose['hip_flexion_deg'], -pose['hip_abduction_deg'],
                     pose['hip_rotation_deg'], pose['knee_deg'], pose['ankle_deg']])
    free = free + leg_wobble * amp
    stand = np.stack([0.5 * knee_support[:, k], 5.0 * support_w[:, k], np.zeros(num),
                      knee_support[:, k], 0.5 * knee_support[:, k]], -1)
    a = lift[:, k:k + 1]
    angles = stand * (1.0 - a) + free * a
    for j, name in enumerate(_LEG_NAMES):
      deg[:, idx(f'{name}_{s}')] = angles[:, j]
      lifted_deg[:, idx(f'{name}_{s}')] = free[:, j]

  # Pelvis: centre of mass over the support foot (2-5 cm in front of the ankle).
  r_home, p_home = fam._flat_feet(ctx, params['stance_width'], params['toe_out_deg'])
  ankle = fam._ankle(geom, r_home, p_home)  # (2, 3)
  cop = ankle + params['cop_forward'] * r_home[:, :, 0]
  q0 = np.radians(deg)
  kinematics.sync_knee_beta(skel, q0)
  com = center_of_mass(skel, q0, ctx.scales)  # pelvis origin at 0
  quiet = fam._sway(ctx, params, 0.005)
  sway = params['sway_m'] * 2.4 * _bounded_noise(seed + 6, t, 2, 0.1, 0.6)
  over = [cop[f, [0, 2]] - com[:, [0, 2]] + sway for f in (0, 1)]
  xz = ((1.0 - single)[:, None] * quiet + w_right[:, None] * over[0]
        + w_left[:, None] * over[1])
  r_pel = fam._pelvis_matrix(ctx, q0)
  rel = np.einsum('tij,sj->tsi', r_pel, geom.hip_in_pelvis)
  hip_xz = xz[:, None] + rel[..., [0, 2]]
  feet_r = np.broadcast_to(r_home, (num, 2, 3, 3))
  feet_p = np.broadcast_to(p_home, (num, 2, 3))

  def height(knee_deg):
    reach = geom.hip_to_ankle_at(np.radians(np.broadcast_to(knee_deg, (num, 2))))
    return leg_height(geom, hip_xz, rel, feet_r, feet_p, reach)  # (T, 2)

  y_double = height(7.0).min(axis=1)
  y_single = height(knee_support)
  y = ((1.0 - single) * y_double + w_right * y_single[:, 0] + w_left * y_single[:, 1])
  pelvis = np.stack([xz[:, 0], y, xz[:, 1]], -1)  # `make_balance` lowers it where needed

  # Lifted feet: forward kinematics of the free-leg postures (the designed legs blend
  # into them in joint space; that blend is only the IK's starting guess).
  q = np.radians(lifted_deg)
  q[:, [idx('pelvis_tx'), idx('pelvis_ty'), idx('pelvis_tz')]] = pelvis
  pos, rot = kinematics.body_poses(skel, kinematics.sync_knee_beta(skel, q), ctx.scales)
  calcn = [skel.body_index(f'calcn_{s}') for s in kinematics.SIDES]
  return dict(deg=deg, lifted_deg=lifted_deg, pelvis=pelvis, lift=lift, r_home=r_home,
              p_home=p_home, r_post=rot[:, calcn], p_post=pos[:, calcn])


def _lowest(geom, r, p) -> np.ndarray:
  """(T, 2) lowest sole point (toes flat) of calcn poses (T, 2, 3, 3), (T, 2, 3)."""
  return geom.sole_points(r, p, np.zeros(p.shape[:-1]))[..., 1].min(axis=-1)


def _adjust_postures(ctx: fam.Context, params: dict, plan: _Plan) -> list:
  """Postures whose main angle keeps the free foot 5-40 cm above the floor over each
  hold (wobble included), by a secant search on a 20 Hz grid of the holds."""
  postures = [dict(p) for p in params['postures']]
  pieces = [np.arange(start, end, 0.05) for _, start, end in plan.holds]
  times = np.concatenate(pieces)
  owner = np.concatenate([np.full(len(x), leg) for x, (leg, _, _) in zip(pieces, plan.holds)])
  sub = dataclasses.replace(ctx, fps=20.0, t=times)
  lo, hi = MIN_CLEARANCE + 0.01, params.get('max_clearance', MAX_CLEARANCE) - 0.01
  history = {leg: [] for leg, _, _ in plan.holds}
  for _ in range(8):
    design = _design(sub, params, plan, postures)
    low = _lowest(ctx.geom, design['r_post'], design['p_post'])
    done = True
    for leg in history:
      sel = (owner == leg) & (design['lift'][:, leg] >= 1.0)
      if not sel.any():
        continue
      h_min, h_max = low[sel, leg].min(), low[sel, leg].max()
      name, (a_lo, a_hi) = _MAIN_ANGLE[postures[leg]['kind']]
      angle = postures[leg][name]
      if h_min < lo:
        error = lo + 0.01 - h_min
      elif h_max > hi:
        error = hi - 0.01 - h_max
      else:
        continue
      history[leg].append((angle, h_min if error > 0 else h_max))
      slope = 0.006  # m per degree, a first guess for every posture
      if len(history[leg]) >= 2:
        (a0, h0), (a1, h1) = history[leg][-2:]
        if abs(a1 - a0) > 1e-6 and (h1 - h0) / (a1 - a0) > 1e-4:
          slope = (h1 - h0) / (a1 - a0)
      new = float(np.clip(angle + error / slope, a_lo, a_hi))
      if new != angle:
        postures[leg][name] = new
        done = False
    if done:
      break
  return postures


def _lift_runs(geom, side, r_home, r_post, a):
  """The lifts and lowerings of one foot: [(first frame, end frame, heel first, pivot
  sole point index)]. A foot that ends toes-down (stork, knee up: turned about its
  lateral axis by more than ~30 degrees, + = toes up) with a forefoot point lowest
  throughout the turn rises heel first; the others (leg forward or to the side) swing
  with the leg."""
  sole = geom.sole_in_calcn[side] @ r_home.T  # (6, 3) relative to the calcn origin
  g = np.linspace(0.0, 1.0, 21)
  runs = []
  for start, end in kinematics.segments((a > 0.0) & (a < 1.0)):
    ref = kinematics.log_rotation(r_post[start + int(np.argmax(a[start:end]))] @ r_home.T)
    turn = kinematics.exp_rotation(g[:, None] * ref)  # (G, 3, 3)
    scores = [np.einsum('gij,kj->gki', turn, sole - c)[..., 1].min() for c in sole]
    pivot = int(np.argmax(scores))
    heel_first = pivot in _FOREFOOT and ref @ r_home[:, 2] < -0.5
    runs.append((start, end, bool(heel_first), pivot))
  return runs


def _pivot_blend(geom, side, r_home, p_home, r_post, p_post, a, pivot):
  """Heel-first foot poses (T, 3, 3), (T, 3) between the flat home pose (a = 0) and
  the lifted pose (a = 1): the heel rises about the toes (sole point `pivot`; the
  turn is done at a = 0.7), the foot rises (a = 0.1-0.7) before it travels
  (a = 0.25-1), so it clears the floor instead of dragging along it, in an arc like
  the one the flexing knee gives. Reversed (lowering), the toes land first and the
  foot rolls flat."""
  omega = kinematics.log_rotation(r_post @ r_home.T)  # (T, 3) world rotation vectors
  c = p_home + r_home @ geom.sole_in_calcn[side, pivot]
  a_up = curves.minimum_jerk((a - 0.1) / 0.6)
  a_along = curves.minimum_jerk((a - 0.25) / 0.75)
  a_r = 0.35 * curves.minimum_jerk(a / 0.35) + 0.65 * a_along
  turn_now = kinematics.exp_rotation(a_r[:, None] * omega)
  full = r_post @ r_home.T
  rotated = c + np.einsum('tij,j->ti', turn_now, p_home - c)
  rotated_full = c + np.einsum('tij,j->ti', full, p_home - c)
  share = np.stack([a_along, a_up, a_along], -1)
  return turn_now @ r_home, rotated + share * (p_post - rotated_full)


def _swing_blend(ctx, q, r_home, p_home, lifted, a, side):
  """Poses (T, 3, 3), (T, 3) of a foot that swings with its leg (leg forward or to the
  side) between the flat home pose (a = 0) and the lifted posture (a = 1). The leg's
  angles blend in joint space (from a = 0.15 on, minimum jerk) from those that put
  the foot at home (IK) to the posture's, so the foot follows an arc about the hip and
  turns with the leg; on top the foot is raised by 4 cm (level, over a = 0-0.3, taken
  back over a = 0.6-1 where the arc is high), so it leaves the floor before it moves
  along it, as in a step's swing."""
  skel = ctx.skel
  legs = kinematics.leg_coordinate_indices(skel, with_mtp=True)
  num = len(a)
  home_r = np.broadcast_to(r_home, (num, 2, 3, 3))
  home_p = np.broadcast_to(p_home, (num, 2, 3))
  start = kinematics.solve_leg_ik(skel, q, home_r, home_p, ctx.scales, max_iterations=15).q
  out = start.copy()
  b = curves.minimum_jerk((a - 0.15) / 0.85)[:, None]
  out[:, legs[side]] = (1.0 - b) * start[:, legs[side]] + b * lifted[:, legs[side]]
  pos, rot = kinematics.body_poses(skel, kinematics.sync_knee_beta(skel, out), ctx.scales)
  calcn = skel.body_index(f'calcn_{kinematics.SIDES[side]}')
  raise_by = 0.04 * curves.minimum_jerk(a / 0.3) * (1.0 - curves.minimum_jerk((a - 0.6) / 0.4))
  p = pos[:, calcn].copy()
  p[:, 1] += raise_by
  return rot[:, calcn], p


def make_balance(ctx: fam.Context, params: dict):
  """Single-leg balance: quiet stance, weight shift, free foot up, hold with
  corrections (and possibly a switch of legs); see the module docstring."""
  geom, num = ctx.geom, ctx.num_frames
  duration = num / ctx.fps
  plan = _plan(params, duration)
  postures = _adjust_postures(ctx, params, plan)
  clip = dataclasses.replace(ctx, t=ctx.t + plan.offset)
  design = _design(clip, params, plan, postures)
  lift, r_home, p_home = design['lift'], design['r_home'], design['p_home']
  pelvis = design['pelvis'].copy()
  # A foot on, leaving or reaching the floor may be far from its hip (the pelvis is
  # over the other foot): the pelvis comes down (the support knee bends) where that leg
  # could not reach the foot's home pose with a nearly straight knee.
  r_pel = fam._pelvis_matrix(clip, np.radians(design['deg']))
  rel = np.einsum('tij,sj->tsi', r_pel, geom.hip_in_pelvis)
  reach = geom.hip_to_ankle_at(np.full((num, 2), kinematics.REACH_KNEE))
  hip_xz = pelvis[:, None, [0, 2]] + rel[..., [0, 2]]
  y_max = leg_height(geom, hip_xz, rel, np.broadcast_to(r_home, (num, 2, 3, 3)),
                     np.broadcast_to(p_home, (num, 2, 3)), reach)
  deficit = np.where(lift < 1.0, np.maximum(pelvis[:, 1, None] - y_max, 0.0), 0.0).max(1)
  drop = np.zeros(num)
  if deficit.max() > 0.0:
    drop = kinematics.smooth_envelope(deficit + 0.002 * (deficit > 0.0),
                                      width=max(1, int(round(0.1 * clip.fps))))
  pelvis[:, 1] -= drop
  p_post = design['p_post'] - np.stack([np.zeros(num), drop, np.zeros(num)], -1)[:, None]
  q = np.radians(design['deg'])
  q[:, [clip.index('pelvis_tx'), clip.index('pelvis_ty'), clip.index('pelvis_tz')]] = pelvis
  lifted = np.radians(design['lifted_deg'])
  tr = np.broadcast_to(r_home, (num, 2, 3, 3)).copy()
  tp = np.broadcast_to(p_home, (num, 2, 3)).copy()
  up = lift >= 1.0
  tr[up], tp[up] = design['r_post'][up], p_post[up]
  for f in (0, 1):
    for a, b, heel_first, pivot in _lift_runs(geom, f, r_home[f], design['r_post'][:, f],
                                              lift[:, f]):
      if heel_first:
        tr[a:b, f], tp[a:b, f] = _pivot_blend(geom, f, r_home[f], p_home[f],
                                              design['r_post'][a:b, f], p_post[a:b, f],
                                              lift[a:b, f], pivot)
      else:
        tr[a:b, f], tp[a:b, f] = _swing_blend(clip, q[a:b], r_home, p_home, lifted[a:b],
                                              lift[a:b, f], f)
  # Moving feet never enter the floor (the paths above should see to it; this covers
  # what the wobble and a rolled foot may add).
  moving = (lift > 0.0) & (lift < 1.0)
  depth = np.where(moving, np.maximum(-_lowest(geom, tr, tp), 0.0), 0.0)
  if depth.max() > 0.0:
    for f in (0, 1):
      width = max(1, int(round(0.03 * clip.fps)))
      raise_by = np.maximum(kinematics.smooth_envelope(depth[:, f], width=width), depth[:, f])
      tp[:, f, 1] += raise_by * (lift[:, f] > 0.0)
  frames = []
  for leg, start, end in plan.holds:
    held = up[:, leg] & (clip.t >= start - 1e-9) & (clip.t <= end + 1e-9)
    frames += [[int(a), int(b), int(1 - leg)] for a, b in kinematics.segments(held)]
  extra = dict(time_offset_s=plan.offset, single_stance_frames=sorted(frames))
  if plan.switch_at is not None:
    extra['switch_at_s'] = plan.switch_at - plan.offset
  return fam._finish(clip, design['deg'], pelvis, tr, tp, reach_knee_deg=None, extra=extra)

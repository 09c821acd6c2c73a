"""Walking and running: normative curves, made consistent with a rigid floor.

A gait clip is built in these steps (`synthesize`; README.md has the numbers and
sources):

1. Design (`design`). Joint angles over the gait cycle are periodic cubic splines
   through keyframes written for this project from published normative curves
   (walking: Winter 2009, Perry & Burnfield 2010, hip angles read as the thigh
   position relative to the pelvis; running: Novacheck 1998), re-timed so toe-off
   falls at the sampled stance fraction; the left leg runs half a cycle (+ a small
   asymmetry) behind the right; pelvis obliquity / rotation / tilt, trunk
   counter-rotation, arm swing opposite to the legs and slow style noise are added.
   These angles drive the pelvis orientation and upper body directly, and the legs
   through the next steps.
2. Pelvis and feet. The pelvis moves forward at the sampled speed (with a small
   twice-per-stride fluctuation) and sways sideways; its height is the one at
   which the stance knee (the leading knee in double support) has its normative
   angle, bridged by a C1 cubic over flight phases. Stance feet are placed so the
   heel strikes ahead of the hip (`mid_stance`, capped by `heel_lead`) and roll
   over Perry's three rockers: heel rocker, foot flat, forefoot rocker (heel
   rising about the MTP axis with the toes flat); the heel rises at least as
   designed and further where the ankle would pass its functional dorsiflexion
   limit or the knee would have to be straighter than normative. Swing feet follow
   designed paths from the toe-off to the heel-strike pose (`_swing_targets`) with
   a sampled minimum clearance. Where a leg could not reach its target the pelvis
   is lowered smoothly.
3. Legs by IK (`kinematics.solve_leg_ik`), started from the normative angles, in
   three passes: calcaneus targets everywhere; forefoot-rocker frames again with
   the toes as target and the heel height free; swing frames re-blended into the
   stance poses found. The feet therefore do not slip and touch the floor; the leg
   angles depart from the normative ones only as much as this requires.

Clips are made with one stride of margin on each side and cropped.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from odah_tfds.motions import curves, kinematics

# Keyframes: (% of the gait cycle from right heel strike, degrees). Right leg; the
# left leg uses the same curves (the model mirrors sides). Sign conventions of the
# model: hip +flexion/+adduction/+internal rotation, knee +flexion, ankle
# +dorsiflexion, subtalar +inversion.
WALK_TOE_OFF = 0.60
WALK = {
    'hip_flexion': [(0, 22), (10, 20), (20, 13), (30, 5), (40, -4), (50, -12), (56, -14),
                    (62, -9), (68, 2), (75, 16), (82, 25), (88, 27), (94, 24)],
    'knee_angle': [(0, 4), (6, 11), (14, 18), (22, 14), (32, 7), (40, 5), (46, 8), (53, 20),
                   (60, 38), (66, 55), (72, 62), (78, 57), (85, 38), (92, 14), (97, 5)],
    'ankle_angle': [(0, 0), (5, -5), (10, -2), (20, 4), (30, 7), (40, 9), (46, 10), (52, 5),
                    (58, -8), (63, -15), (68, -10), (74, -2), (82, 3), (90, 3), (96, 1)],
    'hip_adduction': [(0, 1), (12, 6), (25, 5), (40, 2), (55, -2), (65, -5), (75, -3),
                      (88, 0)],
    'hip_rotation': [(0, 2), (15, 4), (35, 1), (50, -2), (65, -4), (80, 0)],
    'subtalar_angle': [(0, 3), (10, -2), (30, -3), (50, 0), (60, 4), (80, 3)],
}
RUN_TOE_OFF = 0.38
RUN = {
    'hip_flexion': [(0, 35), (8, 30), (16, 20), (25, 8), (33, -2), (38, -6), (44, -8),
                    (52, 0), (62, 20), (72, 38), (82, 46), (90, 44), (96, 39)],
    'knee_angle': [(0, 18), (7, 30), (14, 40), (22, 36), (30, 27), (38, 20), (46, 38),
                   (55, 70), (64, 92), (70, 96), (78, 85), (86, 58), (93, 30), (97, 21)],
    'ankle_angle': [(0, 3), (5, 2), (12, 14), (18, 17), (26, 10), (33, -8), (38, -20),
                    (44, -22), (52, -10), (62, 2), (75, 6), (88, 4), (95, 3)],
    'hip_adduction': [(0, 2), (10, 7), (25, 4), (40, -2), (55, -6), (75, -3), (90, 0)],
    'hip_rotation': [(0, 2), (15, 5), (35, 0), (55, -4), (80, 0)],
    'subtalar_angle': [(0, 4), (10, -3), (25, -4), (38, 2), (60, 4), (85, 4)],
}
SAGITTAL = ('hip_flexion', 'knee_angle', 'ankle_angle')
MAX_HEEL_RISE = 62.0  # deg; the toes' extension (= heel rise) stays inside mtp's -70 deg


@dataclasses.dataclass(frozen=True)
class GaitKind:
  name: str
  keys: dict
  reference_toe_off: float
  flight: bool


WALKING = GaitKind('walking', WALK, WALK_TOE_OFF, flight=False)
RUNNING = GaitKind('running', RUN, RUN_TOE_OFF, flight=True)


def sample_gait_params(kind: GaitKind, rng: np.random.Generator) -> dict:
  """Samples the per-clip parameters of a gait (README.md lists the distributions)."""
  p = {}
  if kind.name == 'walking':
    speed = float(np.clip(rng.normal(1.25, 0.15), 0.9, 1.4))
    # Cadence (steps/min) vs speed, fit to Winter 2009 / Grieve 1968 averages
    # (1.0 m/s: ~101, 1.35: ~114, 1.75: ~128), +-4 % individual variation.
    cadence = (64.8 + 36.4 * speed) * float(np.clip(rng.normal(1.0, 0.04), 0.9, 1.1))
    # Step length (m) kept within 0.50-0.75 (0.29-0.43 of stature for the model's
    # 1.75 m subject) so fast-and-slow-cadence combinations stay walkable.
    cadence = float(np.clip(cadence, 60.0 * speed / 0.75, 60.0 * speed / 0.50))
    stance = 0.62 - 0.04 * (speed - 1.0) + float(rng.normal(0.0, 0.005))
    p.update(arm_swing_deg=float(rng.uniform(8.0, 16.0) * speed / 1.3),
             elbow_deg=float(rng.uniform(10.0, 30.0)), elbow_swing_deg=float(rng.uniform(4, 10)),
             trunk_lean_deg=float(rng.normal(-2.0, 2.0)),
             pelvis_list_deg=float(rng.uniform(2.0, 5.0)),
             pelvis_rotation_deg=float(rng.uniform(2.0, 6.0)),
             pelvis_tilt_amp_deg=float(rng.uniform(0.5, 2.0)),
             clearance=float(rng.uniform(0.018, 0.03)))
  else:
    speed = float(rng.uniform(2.2, 3.0))
    # Step rate (steps/min) vs speed (Cavanagh & Kram 1989; Dorn et al. 2012):
    # ~164 at 2.2 m/s, ~170 at 3.0 m/s.
    cadence = (147.0 + 7.5 * speed) * float(np.clip(rng.normal(1.0, 0.04), 0.9, 1.1))
    stance = 0.43 - 0.02 * speed + float(rng.normal(0.0, 0.008))
    p.update(arm_swing_deg=float(rng.uniform(18.0, 32.0)),
             elbow_deg=float(rng.uniform(70.0, 100.0)),
             elbow_swing_deg=float(rng.uniform(8, 18)),
             trunk_lean_deg=float(rng.uniform(-8.0, -2.0)),
             pelvis_list_deg=float(rng.uniform(3.0, 6.0)),
             pelvis_rotation_deg=float(rng.uniform(4.0, 9.0)),
             pelvis_tilt_amp_deg=float(rng.uniform(1.0, 3.0)),
             clearance=float(rng.uniform(0.03, 0.06)))
  if kind.name == 'walking':
    p.update(step_width=float(rng.uniform(0.07, 0.15)),
             lateral_sway=float(rng.uniform(0.015, 0.03)),
             heel_strike_deg=float(rng.uniform(14.0, 22.0)),
             toe_off_deg=float(rng.uniform(-55.0, -45.0)),
             foot_flat=[0.15, 0.50],
             mid_stance=float(rng.uniform(0.42, 0.47)), heel_lead=0.42)
  else:
    p.update(step_width=float(rng.uniform(0.0, 0.08)),
             lateral_sway=float(rng.uniform(0.005, 0.015)),
             heel_strike_deg=float(rng.uniform(3.0, 16.0)),
             toe_off_deg=float(rng.uniform(-50.0, -38.0)),
             foot_flat=[0.22, 0.45],
             mid_stance=float(rng.uniform(0.30, 0.36)), heel_lead=0.30)
  p.update(dorsiflexion_max_deg=float(rng.uniform(11.0, 15.0)) if kind.name == 'walking'
           else float(rng.uniform(15.0, 18.0)))
  p.update(pelvis_smoothing=0.08 if kind.name == 'walking' else 0.03)
  p.update(speed=speed, cadence_steps_per_min=cadence, stance_fraction=stance,
           step_jitter=[0.01, 0.008, 2.0],
           start_phase=float(rng.uniform(0.0, 1.0)),
           toe_out_deg=float(rng.uniform(0.0, 8.0)),
           # Anterior (negative) pelvic tilt relative to standing: a little in walking,
           # more in running (forward lean; Novacheck 1998); the lumbar spine extends
           # by part of it so the trunk leans less than the pelvis.
           pelvis_tilt_deg=float(rng.normal(-2.0, 1.5)) if kind.name == 'walking'
           else float(rng.uniform(-14.0, -6.0)),
           pro_sup_deg=float(rng.uniform(60.0, 90.0)),
           arm_abduction_deg=float(rng.uniform(5.0, 12.0)),
           asym_amplitude=[float(x) for x in np.clip(rng.normal(1.0, 0.03, 2), 0.92, 1.08)],
           asym_phase=float(np.clip(rng.normal(0.0, 0.008), -0.02, 0.02)),
           noise_deg=float(rng.uniform(1.0, 2.5)),
           noise_seed=int(rng.integers(2**31)))
  return p


def design(skel, kind: GaitKind, params: dict, t: np.ndarray, amplitude: float = 1.0,
           noise: bool = True) -> tuple[np.ndarray, np.ndarray]:
  """Designed coordinates (T, C) radians (root translation zero) and stance (T, 2).

  Args:
    skel: skeleton.
    kind: WALKING or RUNNING.
    params: from `sample_gait_params` (plus nothing else).
    t: (T,) times in seconds.
    amplitude: multiplies the hip flexion excursion and the pelvic rotation
      (1: as sampled).
    noise: add the slow style perturbations.
  """
  ci = skel.coordinate_index
  num_frames = len(t)
  stride_hz = params['cadence_steps_per_min'] / 120.0
  phase_r = params['start_phase'] + stride_hz * t
  phase_l = phase_r + 0.5 + params['asym_phase']
  d = params['stance_fraction']
  deg = np.zeros((num_frames, skel.num_coordinates))
  stance = np.zeros((num_frames, 2), bool)
  for k, (side, phase) in enumerate((('r', phase_r), ('l', phase_l))):
    stance[:, k] = np.mod(phase, 1.0) < d
    p = curves.gait_phase_warp(phase, d, kind.reference_toe_off)
    amp = params['asym_amplitude'][k]
    for name, keys in kind.keys.items():
      v = curves.periodic_keyframes(keys, p)
      if name in SAGITTAL:
        mean = np.mean([k_[1] for k_ in keys])
        scale = amp * (amplitude if name == 'hip_flexion' else 1.0)
        v = mean + scale * (v - mean)
      deg[:, ci(f'{name}_{side}')] = v
    deg[:, ci(f'hip_rotation_{side}')] -= params['toe_out_deg']
    # Toes stay flat on the floor while the heel rises: mtp follows the foot's
    # pitch (tilt + hip - knee + ankle, toes-down negative) in late stance.
    pitch = (deg[:, ci(f'hip_flexion_{side}')] - deg[:, ci(f'knee_angle_{side}')]
             + deg[:, ci(f'ankle_angle_{side}')] + params['pelvis_tilt_deg'])
    s = np.mod(phase, 1.0)
    gate = np.where(s < d, curves.minimum_jerk((s - 0.3 * d) / (0.2 * d)),
                    1.0 - curves.minimum_jerk((s - d) / 0.08))
    deg[:, ci(f'mtp_angle_{side}')] = gate * np.minimum(pitch, 0.0) * 0.95
    # Arms swing opposite to the legs (right arm forward at left heel strike).
    swing = np.cos(2 * np.pi * (phase - 0.55))
    deg[:, ci(f'arm_flex_{side}')] = -2.0 + params['arm_swing_deg'] * amp * swing
    deg[:, ci(f'elbow_flex_{side}')] = params['elbow_deg'] + params['elbow_swing_deg'] * swing
    deg[:, ci(f'arm_add_{side}')] = -params['arm_abduction_deg']
    deg[:, ci(f'pro_sup_{side}')] = params['pro_sup_deg']
  deg[:, ci('pelvis_tilt')] = params['pelvis_tilt_deg'] + params['pelvis_tilt_amp_deg'] * np.cos(
      4 * np.pi * (phase_r - 0.1))
  deg[:, ci('pelvis_list')] = -params['pelvis_list_deg'] * np.sin(2 * np.pi * (phase_r + 0.05))
  deg[:, ci('pelvis_rotation')] = params['pelvis_rotation_deg'] * amplitude * np.cos(
      2 * np.pi * phase_r)
  # The trunk counter-rotates and counter-bends against the pelvis.
  deg[:, ci('lumbar_rotation')] = -0.7 * deg[:, ci('pelvis_rotation')]
  deg[:, ci('lumbar_bending')] = -0.5 * deg[:, ci('pelvis_list')]
  deg[:, ci('lumbar_extension')] = (params['trunk_lean_deg'] - 0.5 * params['pelvis_tilt_deg']
                                    + 1.0 * np.cos(4 * np.pi * phase_r))
  if noise:
    rng = np.random.default_rng(params['noise_seed'])
    names = ['pelvis_tilt', 'pelvis_list', 'lumbar_extension', 'lumbar_bending',
             'lumbar_rotation'] + [f'{c}_{s}' for s in kinematics.SIDES for c in (
                 'hip_flexion', 'hip_adduction', 'hip_rotation', 'knee_angle', 'ankle_angle',
                 'arm_flex', 'arm_add', 'arm_rot', 'elbow_flex', 'wrist_flex', 'wrist_dev')]
    idx = [ci(n) for n in names]
    deg[:, idx] += curves.smooth_noise(rng, t, len(idx), params['noise_deg'])
  q = np.radians(deg)
  q[:, [ci(n) for n in ('pelvis_tx', 'pelvis_ty', 'pelvis_tz')]] = 0.0
  return kinematics.sync_knee_beta(skel, q), stance




# ---- synthesis: feet and pelvis that fit the floor, legs by IK -----------------

def _stance_pitch(params: dict, s) -> np.ndarray:
  """Foot pitch (deg, toes up +) over stance-normalised time s in [0, 1]: heel
  rocker from heel strike to foot flat, flat, forefoot rocker to toe-off (Perry &
  Burnfield's three rockers); minimum-jerk transitions, zero rate at both ends."""
  s1, s2 = params['foot_flat']
  s = np.asarray(s, dtype=np.float64)
  heel = params['heel_strike_deg'] * (1.0 - curves.minimum_jerk(s / s1))
  # 2 u^2 - u^3: starts at rest, still rotating at toe-off (the swing continues
  # the motion); a third of the way at mid forefoot rocker.
  u = np.clip((s - s2) / (1.0 - s2), 0.0, 1.0)
  fore = params['toe_off_deg'] * (2.0 * u**2 - u**3)
  return np.where(s < s1, heel, np.where(s < s2, 0.0, fore))


def _stance_pose(geom: kinematics.SubjectGeometry, side: int, heel_xz, yaw, pitch_deg):
  """calcn pose (R (..., 3, 3), p (..., 3)) and MTP angle (...,) of a foot rolling
  on the floor: heel sole point at heel_xz, heading yaw (rad), pitch (deg): > 0 is
  a rotation about the heel (toes up), < 0 about the MTP axis with the toes kept
  flat (heel up)."""
  pitch = np.radians(np.asarray(pitch_deg, dtype=np.float64))
  yaw = np.broadcast_to(np.asarray(yaw, dtype=np.float64), pitch.shape)
  heel_xz = np.broadcast_to(np.asarray(heel_xz, dtype=np.float64), pitch.shape + (2,))
  r_flat = kinematics.rot_y(yaw)
  heel_w = np.stack([heel_xz[..., 0], np.zeros_like(pitch), heel_xz[..., 1]], -1)
  p_flat = heel_w - np.einsum('...ij,j->...i', r_flat, geom.heel_in_calcn[side])
  lateral = r_flat[..., :, 2]
  r_heel = kinematics.axis_rotation(lateral, np.maximum(pitch, 0.0))
  axis = np.einsum('...ij,j->...i', r_flat, geom.mtp_axis_in_calcn[side])
  centre = p_flat + np.einsum('...ij,j->...i', r_flat, geom.mtp_center_in_calcn[side])
  # + rotation about the MTP axis flexes the toes down, i.e. lifts the heel.
  gamma = np.maximum(-pitch, 0.0)
  r_toe = kinematics.axis_rotation(axis, gamma)
  heel_up = pitch < 0
  rot = np.where(heel_up[..., None, None], r_toe @ r_flat, r_heel @ r_flat)
  pivot = np.where(heel_up[..., None], centre, heel_w)
  rr = np.where(heel_up[..., None, None], r_toe, r_heel)
  pos = pivot + np.einsum('...ij,...j->...i', rr, p_flat - pivot)
  return rot, pos, -gamma


def hermite_fill(values, a: int, b: int, fps: float) -> None:
  """Fills values[a:b] (frames of a gap, any trailing shape) in place with a cubic
  Hermite that joins values and finite-difference velocities at a-1 and b (the gap
  must have known frames on both sides, each with one more known neighbour when
  available)."""
  n = len(values)
  i0, i1 = a - 1, b
  if i0 < 0 and i1 >= n:
    return
  if i0 < 0:
    values[a:b] = values[i1]
    return
  if i1 >= n:
    values[a:b] = values[i0]
    return
  v0 = (values[i0] - values[i0 - 1]) * fps if i0 >= 1 else 0.0 * values[i0]
  v1 = (values[i1 + 1] - values[i1]) * fps if i1 + 1 < n else 0.0 * values[i1]
  span = (i1 - i0) / fps
  sv = (np.arange(a, b) - i0) / (i1 - i0)
  sv = sv.reshape((-1,) + (1,) * (np.ndim(values) - 1))
  values[a:b] = kinematics.hermite(values[i0], v0, values[i1], v1, span, sv)


def _swing_targets(geom, stance, swing_s, fps, stance_p, stance_r, stance_m, r_norm, clearance):
  """Swing-foot targets between the stance poses that bound each swing.

  Position: from the toe-off to the heel-strike position along
  `curves.plateau_blend` (accelerate over the first 30 %, constant speed,
  decelerate over the last 30 %: peak foot speed ~1.4 x its mean, near measured
  swing trajectories) plus short-lived terms that match the stance velocities at
  both ends (C1); then moved vertically so the lowest sole point follows a
  clearance profile (up over the first 30 % of the swing, `clearance` until 70 %,
  down onto the floor at heel strike). Orientation: the normative curves' foot
  orientation `r_norm` times a correction blended the same way between the
  corrections that match the stance poses. Toes: from their toe-off angle back to
  neutral in the first 40 % of the swing.

  Args:
    swing_s: (T, 2) swing-normalised time in [0, 1] (0 at toe-off, 1 at heel strike).
    stance_p, stance_r, stance_m: (T, 2, 3), (T, 2, 3, 3), (T, 2) calcn poses and MTP
      angles, used in stance frames.
    r_norm: (T, 2, 3, 3) calcn orientations of the normative curves.

  Returns target positions, rotations and mtp (stance frames unchanged).
  """
  target_p, target_r, mtp = stance_p.copy(), stance_r.copy(), stance_m.copy()
  num_frames = len(stance)
  for f in (0, 1):
    offset = kinematics.log_rotation(np.einsum('tji,tjk->tik', r_norm[:, f], stance_r[:, f]))
    for a, b in kinematics.segments(~stance[:, f]):
      frames = np.arange(a, b)
      i0, i1 = a - 1, b
      if i0 < 1 or i1 >= num_frames - 1:
        # No stance on one side (only at the very edge of the padded clip).
        k = i0 if i0 >= 0 else min(i1, num_frames - 1)
        target_p[frames, f], target_r[frames, f], mtp[frames, f] = (
            stance_p[k, f], stance_r[k, f], stance_m[k, f])
        continue
      ends = [i0 - 1, i0, i1, i1 + 1]
      rv = np.zeros((num_frames, 3))
      rv[ends] = offset[ends]
      _blend_fill(rv, a, b, fps)
      rot = r_norm[frames, f] @ kinematics.exp_rotation(rv[frames])
      # Blend the point the foot pivots on: the MTP joint centre at toe-off, the
      # heel at heel strike (both at rest there), moving from one to the other
      # along the foot during the swing; the calcaneus origin follows.
      sv = swing_s[frames, f]
      on_foot = curves.minimum_jerk(sv)[:, None]
      pivot_c = (1 - on_foot) * geom.mtp_center_in_calcn[f] + on_foot * geom.heel_in_calcn[f]
      pivot = np.zeros((num_frames, 3))
      for i, c in ((i0 - 1, geom.mtp_center_in_calcn[f]), (i0, geom.mtp_center_in_calcn[f]),
                   (i1, geom.heel_in_calcn[f]), (i1 + 1, geom.heel_in_calcn[f])):
        pivot[i] = stance_p[i, f] + stance_r[i, f] @ c
      _blend_fill(pivot, a, b, fps)
      pos = np.zeros((num_frames, 3))
      pos[frames] = pivot[frames] - np.einsum('tij,tj->ti', rot, pivot_c)
      m0 = stance_m[i0, f]
      v0 = (stance_m[i0, f] - stance_m[i0 - 1, f]) * fps
      span = (i1 - i0) / fps
      toes = kinematics.hermite(m0, v0, 0.0, 0.0, 0.4 * span, np.clip(sv / 0.4, 0.0, 1.0))
      both_r = np.repeat(rot[:, None], 2, axis=1)
      both_p = np.repeat(pos[frames][:, None], 2, axis=1)
      both_m = np.repeat(toes[:, None], 2, axis=1)
      low = geom.sole_points(both_r, both_p, both_m)[:, f, :, 1].min(-1)
      profile = curves.minimum_jerk(sv / 0.3) * curves.minimum_jerk((1.0 - sv) / 0.3)
      pos[frames, 1] += clearance * profile - low
      target_p[frames, f], target_r[frames, f], mtp[frames, f] = pos[frames], rot, toes
  return target_p, target_r, mtp


def _blend_fill(values, a: int, b: int, fps: float, tau: float = 0.05,
                linear: float = 0.0) -> None:
  """Fills values[a:b] in place from the known frames a-2..a-1 and b..b+1.

  The fill is a blend of the two end values with weight w(s) = linear * s +
  (1 - linear) * curves.plateau_blend(s), plus short-lived terms v * dt * exp(-dt / tau) that
  add whatever velocity is missing at each end (finite differences), so the result
  is C1 there and stays close to the blend (unlike a cubic Hermite over a long gap,
  which can bulge far out).
  """
  n = len(values)
  i0, i1 = a - 1, b
  if i0 < 0 and i1 >= n:
    return
  if i0 < 0:
    values[a:b] = values[i1]
    return
  if i1 >= n:
    values[a:b] = values[i0]
    return
  span = (i1 - i0) / fps
  slope = linear * (values[i1] - values[i0]) / span  # the blend's own end velocity
  v0 = ((values[i0] - values[i0 - 1]) * fps if i0 >= 1 else 0.0 * values[i0]) - slope
  v1 = ((values[i1 + 1] - values[i1]) * fps if i1 + 1 < n else 0.0 * values[i1]) - slope
  idx = np.arange(a, b)
  shape = (-1,) + (1,) * (np.ndim(values) - 1)
  sv = (idx - i0) / (i1 - i0)
  w = (linear * sv + (1.0 - linear) * curves.plateau_blend(sv)).reshape(shape)
  d0 = ((idx - i0) / fps).reshape(shape)
  d1 = ((i1 - idx) / fps).reshape(shape)
  values[a:b] = (values[i0] * (1 - w) + values[i1] * w + v0 * d0 * np.exp(-d0 / tau)
                 - v1 * d1 * np.exp(-d1 / tau))


def synthesize(skel, kind: GaitKind, params: dict, t: np.ndarray, scales=None) -> tuple:
  """Coordinates (T, C) of a gait clip at times t (s, uniform) and a dict of diagnostics.

  The clip is made with one stride of margin on both sides (so every swing has a
  stance on either side) and cropped.
  """
  fps = 1.0 / (t[1] - t[0]) if len(t) > 1 else 60.0
  pad = int(np.ceil(1.0 * 120.0 / params['cadence_steps_per_min'] * fps))
  t_ext = t[0] + np.arange(-pad, len(t) + pad) / fps
  q, info = _synthesize(skel, kind, params, t_ext, scales)
  keep = slice(pad, pad + len(t))
  info = {k: (v[keep] if isinstance(v, np.ndarray) else v) for k, v in info.items()}
  info['targets'] = tuple(x[keep] for x in info['targets'])
  info['ik_position_error'] = float(info['ik_position_error'].max())
  info['ik_rotation_error'] = float(info['ik_rotation_error'].max())
  # Residual penetration (IK at range limits) is removed on the cropped clip only.
  q, info['lifted'] = kinematics.lift_out_of_floor(skel, q[keep], scales, fps)
  return q, info


def leg_height(geom, hip_xz, hip_rel, target_r, target_p, reach) -> np.ndarray:
  """(T, 2) pelvis_ty at which each leg's hip-to-ankle distance equals `reach` (T, 2)
  for its calcn target (T, 2, 3, 3), (T, 2, 3)."""
  ankle = target_p + np.einsum('tsij,sj->tsi', target_r, geom.talus_in_calcn)
  horiz2 = np.sum((hip_xz - ankle[..., [0, 2]])**2, axis=-1)
  return ankle[..., 1] + np.sqrt(np.maximum(reach**2 - horiz2, 1e-4)) - hip_rel[..., 1]


def heel_rise_needed(geom, sides, hip, xz, yaw, knee_target=None, dorsiflexion_max=None):
  """Smallest forefoot-rocker angle (deg, >= 0) per element such that, with the toes
  fixed at footstep (xz, yaw) and the hip joint centre at `hip` (N, 3):
    * knee_target (N,) rad: the knee is not more extended than this (the hip-ankle
      distance is at most the one of this knee angle), and/or
    * dorsiflexion_max (N,) rad: the ankle, estimated in the foot's sagittal plane
      from a two-segment leg, is dorsiflexed at most this much.
  Bisection on [0, MAX_HEEL_RISE] deg (both quantities decrease as the heel rises)."""
  n = len(sides)
  lo, hi = np.zeros(n), np.full(n, MAX_HEEL_RISE)
  thigh, shank = geom.thigh_length[sides], geom.shank_length[sides]
  fwd = np.stack([np.cos(yaw), -np.sin(yaw)], -1)  # heading in (x, z)
  for _ in range(22):
    mid = 0.5 * (lo + hi)
    r, p, _ = stance_pose_sides(geom, sides, xz, yaw, -mid)
    ankle = p + np.einsum('nij,nj->ni', r, geom.talus_in_calcn[sides])
    rel = hip - ankle
    dist = np.linalg.norm(rel, axis=-1)
    bad = np.zeros(n, bool)
    if knee_target is not None:
      want = np.array([np.interp(k, geom.knee_grid, geom.hip_to_ankle[s_])
                       for k, s_ in zip(knee_target, sides)])
      bad |= dist > want
    if dorsiflexion_max is not None:
      ahead = np.sum(rel[:, [0, 2]] * fwd, axis=-1)
      lean = np.arctan2(ahead, rel[:, 1])  # hip-ankle line, forward of vertical
      cos_a = (shank**2 + dist**2 - thigh**2) / (2 * shank * np.maximum(dist, 1e-6))
      shank_lean = lean + np.arccos(np.clip(cos_a, -1.0, 1.0))  # the knee is in front
      bad |= (shank_lean - np.radians(mid)) > dorsiflexion_max
    lo, hi = np.where(bad, mid, lo), np.where(bad, hi, mid)
  return 0.5 * (lo + hi)


def _synthesize(skel, kind: GaitKind, params: dict, t: np.ndarray, scales=None) -> tuple:
  """`synthesize` without the margin."""
  ci = skel.coordinate_index
  s = None if scales is None else kinematics.check_scales(skel, scales)
  geom = kinematics.subject_geometry(skel, s)
  fps = 1.0 / (t[1] - t[0]) if len(t) > 1 else 60.0
  num_frames = len(t)
  frames_all = np.arange(num_frames)
  both = np.broadcast_to([0, 1], (num_frames, 2))
  q_norm, stance = design(skel, kind, params, t)
  stride_hz = params['cadence_steps_per_min'] / 120.0
  v = params['speed']
  d = params['stance_fraction']
  phase0 = np.array([params['start_phase'], params['start_phase'] + 0.5 + params['asym_phase']])
  phase = phase0[None] + stride_hz * t[:, None]  # (T, 2)

  def pelvis_x(tt):
    return v * tt + 0.02 * v / (4 * np.pi * stride_hz) * np.sin(
        4 * np.pi * (params['start_phase'] + stride_hz * tt))

  x_p = pelvis_x(t)
  z_p = params['lateral_sway'] * np.sin(2 * np.pi * phase[:, 0])
  r_pel = kinematics.pelvis_matrix(q_norm[:, ci('pelvis_tilt')], q_norm[:, ci('pelvis_list')],
                                   q_norm[:, ci('pelvis_rotation')])
  hip_rel = np.einsum('tij,sj->tsi', r_pel, geom.hip_in_pelvis)  # (T, 2, 3)
  hip_xz = np.stack([x_p, z_p], -1)[:, None] + hip_rel[..., [0, 2]]  # (T, 2, 2)
  legs7 = kinematics.leg_coordinate_indices(skel, with_mtp=True)
  knee_norm = q_norm[:, legs7[:, 3]]
  reach_norm = geom.hip_to_ankle_at(knee_norm)  # (T, 2) normative hip-to-ankle distances
  reach_max = geom.hip_to_ankle_at(np.full((num_frames, 2), 2 * kinematics.REACH_KNEE))
  flight = ~stance.any(axis=1)
  double = stance.all(axis=1)
  swing_s = np.clip((np.mod(phase, 1.0) - d) / (1.0 - d), 0.0, 1.0)
  step_k = np.floor(phase).astype(int)
  s_norm = np.mod(phase, 1.0) / d
  s1, s2 = params['foot_flat']

  # 1. Footsteps: the ankle passes under the hip at `mid_stance` of the stance, the
  # heel striking at most `heel_lead` leg lengths ahead of the hip joint centre.
  footstep_xz = np.zeros((num_frames, 2, 2))
  footstep_yaw = np.zeros((num_frames, 2))
  yaw0 = np.radians(params['toe_out_deg'])
  t_stance = d / stride_hz
  jx, jz, jyaw = params['step_jitter']
  for f, side_z in ((0, 1.0), (1, -1.0)):
    hip_dx = geom.hip_in_pelvis[f, 0]
    ankle_dx = geom.talus_in_calcn[f, 0] - geom.heel_in_calcn[f, 0]
    for k in np.unique(step_k[stance[:, f], f]):
      frames = np.nonzero(stance[:, f] & (step_k[:, f] == k))[0]
      t_hs = (k - phase0[f]) / stride_hz
      rng = np.random.default_rng([params['noise_seed'], f, int(k) % (2**31)])
      jitter = rng.normal(size=3) * [jx, jz, np.radians(jyaw)]
      lead = min(pelvis_x(t_hs + params['mid_stance'] * t_stance) - pelvis_x(t_hs) - ankle_dx,
                 params['heel_lead'] * geom.leg_reach[f])
      footstep_xz[frames, f] = (pelvis_x(t_hs) + hip_dx + lead + jitter[0],
                                side_z * 0.5 * params['step_width'] + jitter[1])
      footstep_yaw[frames, f] = -side_z * yaw0 + jitter[2]
  pitch = np.where(stance, _stance_pitch(params, np.minimum(s_norm, 1.0)), 0.0)
  stance_r, stance_p, stance_m = stance_pose_sides(geom, both, footstep_xz, footstep_yaw, pitch)

  # 2. Pelvis height from the normative knee of the stance leg (the leading leg in
  # double support: the one whose stance began last).
  y_leg = leg_height(geom, hip_xz, hip_rel, stance_r, stance_p, reach_norm)
  leading = np.argmin(np.where(stance, s_norm, np.inf), axis=1)  # (T,)
  # In double support the trailing leg, with its heel fully raised, must reach too.
  high_r, high_p, _ = stance_pose_sides(geom, both, footstep_xz, footstep_yaw,
                                         np.full((num_frames, 2), -MAX_HEEL_RISE))
  y_high = leg_height(geom, hip_xz, hip_rel, high_r, high_p, reach_norm)
  y_p = np.where(double, np.minimum(y_leg[frames_all, leading], y_high[frames_all, 1 - leading]),
                 np.where(stance, y_leg, np.inf).min(axis=1))
  for a, b in kinematics.segments(flight):
    hermite_fill(y_p, a, b, fps)
  y_p = kinematics.lower_envelope(y_p, width=max(1, int(round(params['pelvis_smoothing'] * fps))))

  # 3-4. Heel rise and pelvis height, twice (the swing targets depend on the
  # toe-off poses, the reach on the swing targets). Heel rise: at least the
  # designed rocker; more where the ankle would pass its functional dorsiflexion
  # limit or the knee would have to be straighter than its normative angle (the
  # heel rises instead of the knee flexing when the pelvis is low). Within a stance
  # the heel only rises (running max) and the result is smoothed. Then the pelvis is
  # lowered where a leg could not reach its (swing) target with a straight knee.
  designed_pitch = pitch.copy()
  q0 = q_norm.copy()
  q0[:, ci('pelvis_tx')], q0[:, ci('pelvis_tz')] = x_p, z_p
  calcn = [skel.body_index(f'calcn_{x}') for x in kinematics.SIDES]
  r_norm = kinematics.body_poses(skel, q0, s)[1][:, calcn]
  late = stance & (s_norm >= s1)
  rows, feet = np.nonzero(late)
  sigma = max(1, int(round(0.03 * fps)))
  for _ in range(2):
    hip_world = np.concatenate([hip_xz[..., :1], (y_p[:, None] + hip_rel[..., 1])[..., None],
                                hip_xz[..., 1:]], -1)  # (T, 2, 3)
    gamma = np.zeros((num_frames, 2))
    if len(rows):
      gamma[rows, feet] = heel_rise_needed(
          geom, feet, hip_world[rows, feet], footstep_xz[rows, feet], footstep_yaw[rows, feet],
          knee_target=knee_norm[rows, feet],
          dorsiflexion_max=np.full(len(rows), np.radians(params['dorsiflexion_max_deg'])))
    pitch = designed_pitch.copy()
    for f in (0, 1):
      for a, b in kinematics.segments(stance[:, f]):
        g = np.maximum(gamma[a:b, f], -designed_pitch[a:b, f])
        g = np.maximum.accumulate(np.where(late[a:b, f], g, 0.0))
        g = kinematics.smooth_envelope(g, width=sigma)
        pitch[a:b, f] = np.where(late[a:b, f], -np.minimum(g, MAX_HEEL_RISE), pitch[a:b, f])
    stance_r, stance_p, stance_m = stance_pose_sides(geom, both, footstep_xz, footstep_yaw,
                                                      pitch)
    target_p, target_r, mtp = _swing_targets(geom, stance, swing_s, fps, stance_p, stance_r,
                                             stance_m, r_norm, params['clearance'])
    y_reach = leg_height(geom, hip_xz, hip_rel, target_r, target_p, reach_max).min(axis=1)
    drop = np.maximum(0.0, y_p - y_reach)
    y_p = y_p - kinematics.smooth_envelope(
        drop, width=max(1, int(round(params['pelvis_smoothing'] * fps))))
  q0[:, ci('pelvis_ty')] = y_p

  # 5. Legs by IK, three passes. (a) Every frame with calcaneus targets (the
  # designed poses). (b) Forefoot-rocker frames again with the toes as target and
  # the heel height free (pulled towards the design, pushed away from the ankle's
  # range limits), started from (a). (c) Swing frames re-blended into the stance
  # poses (a) and (b) found.
  fore = late & (s_norm >= s2)
  flat_r, flat_p, _ = stance_pose_sides(geom, both, footstep_xz, footstep_yaw,
                                         np.zeros((num_frames, 2)))
  toes_p = flat_p + np.einsum('tsij,sj->tsi', flat_r, geom.toes_in_calcn)
  reference = q_norm[:, legs7].copy()
  reference[..., 6] = mtp
  pin = np.full((num_frames, 2, 7), 5e-4)
  pin[..., 6] = 0.05
  first = kinematics.solve_leg_ik(skel, q0, target_r, target_p, s, reference=reference,
                                  reference_weight=pin, soft_limit_weight=0.01)
  q = first.q
  rows = np.nonzero(fore.any(axis=1))[0]
  if len(rows):
    ramp = np.where(fore, curves.minimum_jerk((s_norm - s2) / 0.2), 0.0)[rows]
    weight = pin[rows].copy()
    weight[..., 6] = 0.05 + ramp * (0.01 - 0.05)
    body = np.where(fore[rows], kinematics.TOES, kinematics.CALCN)
    goal_p = np.where(fore[rows, :, None], toes_p[rows], target_p[rows])
    goal_r = np.where(fore[rows, :, None, None], flat_r[rows], target_r[rows])
    second = kinematics.solve_leg_ik(skel, q[rows], goal_r, goal_p, s, target_body=body,
                                     reference=reference[rows], reference_weight=weight,
                                     soft_limit_weight=0.01)
    for f in (0, 1):
      sel = fore[rows, f]
      q[rows[sel][:, None], legs7[f]] = second.q[sel][:, legs7[f]]
  pos, rot = kinematics.body_poses(skel, q, s)
  solved_p = np.where(stance[..., None], pos[:, calcn], target_p)
  solved_r = np.where(stance[..., None, None], rot[:, calcn], target_r)
  solved_m = np.where(stance, q[:, legs7[:, 6]], mtp)
  target_p, target_r, mtp = _swing_targets(geom, stance, swing_s, fps, solved_p, solved_r,
                                           solved_m, r_norm, params['clearance'])
  reference[..., 6] = mtp
  rows = np.nonzero((~stance).any(axis=1))[0]
  if len(rows):
    third = kinematics.solve_leg_ik(skel, q[rows], target_r[rows], target_p[rows], s,
                                    reference=reference[rows], reference_weight=pin[rows],
                                    soft_limit_weight=0.01)
    for f in (0, 1):
      sel = ~stance[rows, f]
      q[rows[sel][:, None], legs7[f]] = third.q[sel][:, legs7[f]]
  # Residuals of the final poses (toes targets in the forefoot rocker).
  pos, rot = kinematics.body_poses(skel, q, s)
  toes = [skel.body_index(f'toes_{x}') for x in kinematics.SIDES]
  goal_p = np.where(fore[..., None], toes_p, target_p)
  goal_r = np.where(fore[..., None, None], flat_r, target_r)
  got_p = np.where(fore[..., None], pos[:, toes], pos[:, calcn])
  got_r = np.where(fore[..., None, None], rot[:, toes], rot[:, calcn])
  result = kinematics.IKResult(
      q=q, position_error=np.linalg.norm(got_p - goal_p, axis=-1),
      rotation_error=np.linalg.norm(kinematics.log_rotation(
          np.swapaxes(goal_r, -1, -2) @ got_r), axis=-1), iterations=first.iterations)
  q = kinematics.sync_knee_beta(skel, result.q)
  info = dict(stance=stance, flight=flight, ik_position_error=result.position_error,
              ik_rotation_error=result.rotation_error, targets=(target_r, target_p))
  return q, info


def stance_pose_sides(geom, sides, heel_xz, yaw, pitch_deg):
  """`_stance_pose` for a batch where each element has its own side (0/1)."""
  sides = np.asarray(sides)
  out_r = np.zeros(sides.shape + (3, 3))
  out_p = np.zeros(sides.shape + (3,))
  out_m = np.zeros(sides.shape)
  pitch_deg = np.broadcast_to(pitch_deg, sides.shape)
  for f in (0, 1):
    sel = sides == f
    if sel.any():
      out_r[sel], out_p[sel], out_m[sel] = _stance_pose(geom, f, np.asarray(heel_xz)[sel],
                                                        np.asarray(yaw)[sel], pitch_deg[sel])
  return out_r, out_p, out_m

"""The procedural motion library: registry of families and the sampling entry points.

    from odah_tfds.motions import sample_motion, sample_any, FAMILIES
    m = sample_motion('walking', rng=0, duration=4.0)        # Motion, 60 fps
    m = sample_any(np.random.default_rng(1), num_frames=240)  # a random ODAH 1 family
    m = sample_any(2, families=list(FAMILIES), num_frames=240)  # any of all 17

`FAMILIES` holds every family; `ODAH_1_FAMILIES` the 13 of the first ODAH release, in
their registry order. "All families" (`families=None` in `sample_any` and in the
dataset generator's configs) means ODAH_1_FAMILIES, so that adding a family does not
change which family an existing config draws for a seed; a config that wants a newer
family (`balance`, `turning`, `kneeling`) names it.

Every clip is made for one subject (the project model, optionally scaled by `scales`
(B, 3)): its root translation comes from the skeleton's forward kinematics so that
that subject's feet are on the floor. Clips start facing +x at the origin (pelvis
origin at x = z = 0 in the first frame; a clip that would leave the model's +-10 m
capture volume is centred on the origin instead); `heading_deg` turns the whole clip
about the vertical axis. See README.md for the families, their parameters and the
plausibility checks.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Callable, Sequence

import numpy as np

from banet_jax.skeleton.models import project_skeleton
from odah_tfds.motions import (balance, curves, dynamic, gait, kinematics, kneeling, lower_body,
                               turning, upper_body)
from odah_tfds.motions.base import Motion
from odah_tfds.motions.family_tools import Context


@dataclasses.dataclass(frozen=True)
class Family:
  """A motion family: how to sample its parameters and build a clip."""

  name: str
  description: str
  sample_params: Callable[[np.random.Generator], dict]
  build: Callable  # (Context, params) -> (q (T, C), info dict)
  duration_s: tuple[float, float]  # default clip length range (uniform)


def _gait_family(kind: gait.GaitKind, description: str, duration) -> Family:
  def build(ctx, params):
    q, info = gait.synthesize(ctx.skel, kind, params, ctx.t, ctx.scales)
    return q, info
  return Family(kind.name, description, lambda rng: gait.sample_gait_params(kind, rng), build,
                duration)


FAMILIES: dict[str, Family] = {f.name: f for f in [
    _gait_family(gait.WALKING, 'level walking, 0.9-1.4 m/s', (4.0, 8.0)),
    _gait_family(gait.RUNNING, 'running / jogging, 2.2-3.0 m/s, with flight phases', (3.0, 6.0)),
    Family('squat', 'bodyweight squats, heels down', lower_body.sample_squat,
           lower_body.make_squat, (5.0, 10.0)),
    Family('sit_to_stand', 'rising from and sitting down on a (not modelled) seat',
           lower_body.sample_sit_to_stand, lower_body.make_sit_to_stand, (5.0, 10.0)),
    Family('lunge', 'stationary lunges (split squats), rear heel up', lower_body.sample_lunge,
           lower_body.make_lunge, (5.0, 10.0)),
    Family('jumping_jacks', 'jumping jacks (hops, arms to overhead)',
           dynamic.sample_jumping_jacks, dynamic.make_jumping_jacks, (4.0, 8.0)),
    Family('arm_flexion', 'front arm raises (shoulder flexion)', upper_body.sample_arm_flexion,
           upper_body.make_arm_flexion, (4.0, 8.0)),
    Family('arm_abduction', 'lateral arm raises (shoulder abduction)',
           upper_body.sample_arm_abduction, upper_body.make_arm_abduction, (4.0, 8.0)),
    Family('reaching', 'one-arm reaches to sampled targets', upper_body.sample_reaching,
           upper_body.make_reaching, (4.0, 8.0)),
    Family('trunk_flexion', 'forward or lateral trunk bending', upper_body.sample_trunk_flexion,
           upper_body.make_trunk_flexion, (5.0, 10.0)),
    Family('trunk_rotation', 'axial trunk rotation to both sides',
           upper_body.sample_trunk_rotation, upper_body.make_trunk_rotation, (4.0, 8.0)),
    Family('stepping', 'side-stepping or marching in place', dynamic.sample_stepping,
           dynamic.make_stepping, (4.0, 8.0)),
    Family('jumping', 'countermovement vertical jumps', dynamic.sample_jumping,
           dynamic.make_jumping, (4.0, 8.0)),
    # Added after ODAH 1: not in ODAH_1_FAMILIES, so not drawn by families=None.
    Family('balance', 'single-leg balance (one-leg stance, arms out, corrections)',
           balance.sample_balance, balance.make_balance, (3.0, 7.0)),
    Family('turning', 'turning in place by step turns, 90-330 degrees',
           turning.sample_turning, turning.make_turning, (4.0, 9.0)),
    Family('kneeling', 'going down to half-kneeling, holding, rising',
           kneeling.sample_kneeling, kneeling.make_kneeling, (5.0, 10.0)),
    Family('balance_reach', 'single-leg balance with reach and trunk lean (Y-balance, '
           'single-leg deadlift)', balance.sample_balance_reach, balance.make_balance,
           (3.0, 7.0)),
]}

# The 13 families of the first ODAH release, in registry order: what "all families"
# (families=None) means for `sample_any` and the dataset generator
# (`odah_tfds.generate`), so that existing dataset configs draw the same family for the
# same seed however many families are added later. Never change this tuple; new
# configs list newer families (e.g. 'balance') explicitly.
ODAH_1_FAMILIES: tuple[str, ...] = (
    'walking', 'running', 'squat', 'sit_to_stand', 'lunge', 'jumping_jacks', 'arm_flexion',
    'arm_abduction', 'reaching', 'trunk_flexion', 'trunk_rotation', 'stepping', 'jumping')

# Upper body and pelvis orientation are designed, not solved: a soft clip keeps them
# inside the model's ranges (leg coordinates are kept inside by the IK).
_RANGE_MARGIN = kinematics.RANGE_MARGIN
_RANGE_WIDTH = np.radians(3.0)


def _as_generator(rng) -> tuple[np.random.Generator, int | None]:
  if isinstance(rng, np.random.Generator):
    return rng, None
  if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
    return np.random.default_rng(int(rng)), int(rng)
  raise TypeError(f'rng must be a numpy Generator or an int seed, got {type(rng).__name__}')


def sample_motion(family: str, rng, fps: float = 60.0, num_frames: int | None = None,
                  duration: float | None = None, skeleton=None, scales=None,
                  heading_deg: float = 0.0) -> Motion:
  """Samples one clip of a family.

  Args:
    family: a key of FAMILIES.
    rng: numpy Generator (its state at entry is stored in params['rng_state']) or int
      seed (stored in Motion.seed).
    fps: frame rate (Hz).
    num_frames: clip length in frames; or give `duration` (s); default: the family's
      duration range, sampled.
    skeleton: a `Skeleton` of the project model (default: the project model).
    scales: (B, 3) body scale factors of the subject the clip is planted for.
    heading_deg: rotation of the whole clip about the vertical axis (positive turns
      +x towards -z, i.e. to the subject's left).

  Returns:
    Motion with coordinates (T, C) float64 in the skeleton's coordinate order.
  """
  if family not in FAMILIES:
    raise KeyError(f'unknown motion family {family!r}; known: {sorted(FAMILIES)}')
  if not np.isfinite(fps) or fps <= 0:
    raise ValueError(f'fps must be positive, got {fps!r}')
  if num_frames is not None and duration is not None:
    raise ValueError('give num_frames or duration, not both')
  gen, seed = _as_generator(rng)
  rng_state = gen.bit_generator.state
  spec = FAMILIES[family]
  skel = skeleton or project_skeleton()
  s = None if scales is None else kinematics.check_scales(skel, scales)
  if num_frames is None:
    if duration is None:
      duration = float(gen.uniform(*spec.duration_s))
    num_frames = int(round(duration * fps))
  num_frames = int(num_frames)
  if num_frames < 2:
    raise ValueError(f'a clip needs at least 2 frames, got {num_frames}')
  params = spec.sample_params(gen)
  start = time.perf_counter()
  geom = kinematics.subject_geometry(skel, s)
  if family in ('walking', 'running'):
    # Dynamic similarity (Alexander 1984): speed ~ sqrt(leg length), step rate ~
    # 1 / sqrt(leg length), so a taller or shorter subject walks at the same Froude
    # number as the model's 1.75 m subject.
    reference = kinematics.subject_geometry(skel).leg_reach.mean()
    froude = float(np.sqrt(geom.leg_reach.mean() / reference))
    params.update(speed=params['speed'] * froude,
                  cadence_steps_per_min=params['cadence_steps_per_min'] / froude,
                  leg_length_factor=froude**2)
  ctx = Context(skel, s, geom, float(fps), np.arange(num_frames) / float(fps))
  q, info = spec.build(ctx, params)
  q = _finalize(skel, q)
  # Start at the origin (pelvis origin above x = z = 0 in the first frame). The
  # model's capture volume is +-10 m: a clip travelling further is centred instead.
  tx, tz = skel.coordinate_index('pelvis_tx'), skel.coordinate_index('pelvis_tz')
  q[:, tx] -= q[0, tx]
  q[:, tz] -= q[0, tz]
  reach = skel.coordinate_ranges[tx, 1] - 0.1
  if np.abs(q[:, tx]).max() > reach:
    q[:, tx] -= 0.5 * (q[:, tx].max() + q[:, tx].min())
  if heading_deg:
    q = kinematics.apply_heading(skel, q, np.radians(heading_deg))
  flight = np.asarray(info.get('flight', np.zeros(num_frames, bool)), bool)
  record = dict(params)
  record.update(
      heading_deg=float(heading_deg), model=skel.model_name,
      scales=None if s is None else s.tolist(),
      flight_frames=[[int(a), int(b)] for a, b in kinematics.segments(flight)],
      ik_position_error_m=float(info.get('ik_position_error', 0.0)),
      ik_rotation_error_rad=float(info.get('ik_rotation_error', 0.0)),
      floor_lift_m=float(info.get('lifted', 0.0)),
      build_seconds=float(time.perf_counter() - start),
      rng_state=rng_state)
  for key in ('takeoff_speed', 'jump_height', 'step_length', 'landing_s', 'time_offset_s',
              'switch_at_s', 'clip_turn_deg', 'knee_height_m'):
    if key in info:
      record[key] = float(info[key])
  if 'single_stance_frames' in info:  # [first, end) frames on one leg, support 0 = right
    record['single_stance_frames'] = [[int(v) for v in seg]
                                      for seg in info['single_stance_frames']]
  return Motion(family=family, fps=float(fps), coordinates=q,
                coordinate_names=tuple(skel.coordinate_names), params=record, seed=seed)


def sample_any(rng, families: Sequence[str] | None = None, weights=None, **kwargs) -> Motion:
  """Samples a family (uniformly, or with `weights`) and then a clip of it.

  Args:
    rng: numpy Generator or int seed.
    families: draw from these families (default: ODAH_1_FAMILIES, the 13 of the
      first ODAH release, so that a seed keeps drawing the same family when families
      are added; pass `list(FAMILIES)` for all of them, 'balance' included).
    weights: optional probabilities, same length as `families`.
    **kwargs: passed to `sample_motion`.
  """
  gen, seed = _as_generator(rng)
  names = list(families or ODAH_1_FAMILIES)
  unknown = [n for n in names if n not in FAMILIES]
  if unknown:
    raise KeyError(f'unknown motion families {unknown}; known: {sorted(FAMILIES)}')
  p = None
  if weights is not None:
    p = np.asarray(weights, dtype=np.float64)
    if p.shape != (len(names),) or np.any(p < 0) or p.sum() <= 0:
      raise ValueError('weights must be non-negative, one per family')
    p = p / p.sum()
  family = names[int(gen.choice(len(names), p=p))]
  motion = sample_motion(family, gen, **kwargs)
  if seed is not None:
    motion = dataclasses.replace(motion, seed=seed)
  return motion


def _finalize(skel, q) -> np.ndarray:
  """Soft-clips designed coordinates into the model's ranges, syncs knee beta."""
  q = np.array(q, dtype=np.float64)
  rot = np.asarray(skel.rotational)
  legs = set(kinematics.leg_coordinate_indices(skel, with_mtp=True).ravel().tolist())
  pelvis = {skel.coordinate_index(n) for n in ('pelvis_tilt', 'pelvis_list', 'pelvis_rotation')}
  for c in np.nonzero(rot)[0]:
    if c in legs or c in pelvis:
      continue
    lo, hi = skel.coordinate_ranges[c]
    q[:, c] = curves.soft_clip(q[:, c], lo + _RANGE_MARGIN, hi - _RANGE_MARGIN, _RANGE_WIDTH)
  return kinematics.sync_knee_beta(skel, q)

"""Physiological plausibility measures of a `Motion` (used by the tests and README).

`measure(motion)` returns plain numbers:

* ranges: largest excursion beyond the model's `coordinate_ranges` (degrees / m,
  0 when inside), and |knee_angle_*_beta - knee_angle_*| (the model's coupler);
* smoothness: peak joint angular speed (deg/s) and acceleration (deg/s^2) over the
  rotational joint coordinates (pelvis orientation included), peak root speed (m/s)
  and acceleration (m/s^2), by central differences at the clip's frame rate;
* ground contact, from the 12 sole points of `kinematics.foot_contacts`:
  `penetration` = depth of the lowest point below the floor (m, 0 if none);
  `float_height` = highest "lowest point" over frames that should be grounded
  (the motion's `flight` mask excluded, m); a foot bears weight at frame t when its
  lowest point is within `STANCE_HEIGHT` of the floor at t - 1, t and t + 1, and its
  slide speed is the horizontal speed of that lowest point; `slide_mean` /
  `slide_p95` average / 95th percentile over all such frames of both feet (m/s);
* progression: mean forward (+x) and lateral speed of the pelvis (m/s).

`LIMITS` holds the thresholds the tests enforce, per family; README.md explains
the choices.
"""

from __future__ import annotations

import time

import numpy as np

from banet_jax.skeleton.models import project_skeleton
from odah_tfds.motions import kinematics, procedural
from odah_tfds.motions.base import Motion

STANCE_HEIGHT = 0.003  # m: a foot whose lowest sole point is this close to the floor bears weight

# Per-family limits (README.md, "Plausibility checks"): peak joint angular speed
# (deg/s) and acceleration (deg/s^2, central differences at the clip's frame rate),
# mean stance slide speed (m/s), highest lowest-sole-point over frames that should
# be grounded (m), deepest penetration (m). Reference magnitudes: walking joints
# peak at ~300-450 deg/s (knee in swing; Winter 2009), running ~800-1100 deg/s,
# countermovement jumps ~900-1100 deg/s (knee / ankle extension before take-off),
# arm movements of the standing families ~200-450 deg/s. Peak accelerations are
# larger in the frames around heel strike / toe-off / landing (impact transients
# that real data shows as well), hence the gait and jump limits.
_DEFAULT = dict(max_speed=600.0, max_accel=20000.0, slide_mean=0.01, float_height=0.003,
                penetration=0.002)
LIMITS = {
    # Gait: where the IK meets a range limit (fast steps) the sole may be lifted by a
    # few millimetres instead of entering the floor.
    'walking': dict(_DEFAULT, max_speed=800.0, max_accel=50000.0, slide_mean=0.03,
                    float_height=0.006),
    'running': dict(_DEFAULT, max_speed=1500.0, max_accel=120000.0, slide_mean=0.03,
                    float_height=0.006),
    'squat': dict(_DEFAULT),
    'sit_to_stand': dict(_DEFAULT),
    # The rear foot's heel-up posture needs more subtalar inversion (the model's MTP
    # axis is oblique) than its range has beyond ~45 deg of heel rise; the IK leaves
    # a few mm there and the sole is lifted rather than pushed into the floor.
    'lunge': dict(_DEFAULT, max_accel=30000.0, float_height=0.010, slide_mean=0.02),
    # Hops land and leave on the forefoot, which rolls: a few mm/s on average.
    'jumping_jacks': dict(_DEFAULT, max_speed=1000.0, max_accel=40000.0, slide_mean=0.02),
    'arm_flexion': dict(_DEFAULT),
    'arm_abduction': dict(_DEFAULT),
    'reaching': dict(_DEFAULT),
    'trunk_flexion': dict(_DEFAULT),
    'trunk_rotation': dict(_DEFAULT),
    'stepping': dict(_DEFAULT),
    'jumping': dict(_DEFAULT, max_speed=1500.0, max_accel=100000.0),
    # One foot flat and static, the other in the air: the standing families' limits.
    'balance': dict(_DEFAULT),
    # Pelvis lists of 20-28 deg tip the support leg sideways beyond what the subtalar
    # range (-15..35) keeps flat: the sole's edge lifts by up to ~1 cm (a real foot rolls
    # onto its edge too); measured over 40 seeds x 360 frames: at most 11.4 mm.
    'balance_reach': dict(_DEFAULT, float_height=0.012),
    # Feet flat and static between steps, swings lifted: the standing families' limits.
    'turning': dict(_DEFAULT),
    # The kneeling leg's foot stands on its toes with the heel up (as the lunge's rear
    # foot: few-mm IK residuals, the sole lifted) before it turns over: the lunge's limits.
    'kneeling': dict(_DEFAULT, max_accel=30000.0, float_height=0.010, slide_mean=0.02),
}


def _central(x: np.ndarray, fps: float) -> tuple[np.ndarray, np.ndarray]:
  """Central first and second differences along axis 0 (interior frames)."""
  if x.shape[0] < 3:
    return np.zeros((0,) + x.shape[1:]), np.zeros((0,) + x.shape[1:])
  vel = (x[2:] - x[:-2]) * (fps / 2.0)
  acc = (x[2:] - 2 * x[1:-1] + x[:-2]) * fps**2
  return vel, acc


def measure(motion: Motion, skel=None, scales=None, flight=None) -> dict:
  """Plausibility numbers of one motion (see the module docstring).

  Args:
    motion: the clip.
    skel: the skeleton the motion was made for (default: the project model).
    scales: (B, 3) body scales the root was planted for (default: read from
      `motion.params['scales']` when present, else unscaled).
    flight: (T,) bool frames allowed off the floor (default:
      `motion.params['flight_frames']` ranges, else none).
  """
  skel = skel or project_skeleton()
  if tuple(skel.coordinate_names) != motion.coordinate_names:
    raise ValueError('motion.coordinate_names differ from the skeleton\'s')
  q = motion.coordinates
  fps = motion.fps
  if scales is None and motion.params.get('scales') is not None:
    scales = np.asarray(motion.params['scales'])
  if flight is None:
    flight = np.zeros(motion.num_frames, bool)
    for a, b in motion.params.get('flight_frames', []):
      flight[a:b] = True
  flight = np.asarray(flight, bool)
  rotational = np.asarray(skel.rotational)
  lo, hi = skel.coordinate_ranges[:, 0], skel.coordinate_ranges[:, 1]
  excess = np.maximum(q - hi, 0) + np.maximum(lo - q, 0)
  excess = np.where(rotational, np.degrees(excess), excess)
  beta = 0.0
  for s in kinematics.SIDES:
    k = skel.coordinate_index(f'knee_angle_{s}')
    kb = skel.coordinate_index(f'knee_angle_{s}_beta')
    beta = max(beta, float(np.abs(q[:, k] - q[:, kb]).max()))
  root = [skel.coordinate_index(n) for n in ('pelvis_tx', 'pelvis_ty', 'pelvis_tz')]
  ang_vel, ang_acc = _central(np.degrees(q[:, rotational]), fps)
  lin_vel, lin_acc = _central(q[:, root], fps)
  contacts = kinematics.contact_points(skel, q, scales)  # (T, P, 3)
  feet = kinematics.foot_contacts(skel).foot
  lowest = contacts[..., 1].min(axis=1)
  grounded = ~flight
  slides = []
  for f in (0, 1):
    pts = contacts[:, feet == f]  # (T, K, 3)
    idx = np.argmin(pts[..., 1], axis=1)
    low = pts[np.arange(len(idx)), idx]  # (T, 3)
    touching = low[:, 1] < STANCE_HEIGHT
    # Stance: touching at this frame and both neighbours (touch-down and lift-off
    # frames are transitions, not sliding); the horizontal speed of the lowest
    # point, central difference of that same point.
    stance = touching[1:-1] & touching[:-2] & touching[2:]
    for t in np.nonzero(stance)[0] + 1:
      d = pts[t + 1, idx[t], [0, 2]] - pts[t - 1, idx[t], [0, 2]]
      slides.append(np.hypot(*d) * fps / 2.0)
  slides = np.array(slides) if slides else np.zeros(1)
  duration = (motion.num_frames - 1) / fps
  return {
      'range_excess': float(excess.max()),
      'knee_beta_error': beta,
      'max_angular_speed': float(np.abs(ang_vel).max()) if len(ang_vel) else 0.0,
      'max_angular_accel': float(np.abs(ang_acc).max()) if len(ang_acc) else 0.0,
      'max_root_speed': float(np.linalg.norm(lin_vel, axis=-1).max()) if len(lin_vel) else 0.0,
      'max_root_accel': float(np.linalg.norm(lin_acc, axis=-1).max()) if len(lin_acc) else 0.0,
      'penetration': float(max(0.0, -lowest.min())),
      'float_height': float(lowest[grounded].max()) if grounded.any() else 0.0,
      'slide_mean': float(slides.mean()),
      'slide_p95': float(np.percentile(slides, 95)),
      'stance_fraction': float(len(slides) / (2 * motion.num_frames)),
      'forward_speed': float((q[-1, root[0]] - q[0, root[0]]) / duration) if duration > 0 else 0.0,
      'lateral_speed': float((q[-1, root[2]] - q[0, root[2]]) / duration) if duration > 0 else 0.0,
  }


def violations(family: str, numbers: dict) -> list[str]:
  """Human-readable list of the LIMITS that `numbers` (from `measure`) break."""
  lim = LIMITS[family]
  out = []
  if numbers['range_excess'] > 1e-9:
    out.append(f"outside coordinate ranges by {numbers['range_excess']:.3g}")
  if numbers['knee_beta_error'] > 1e-12:
    out.append(f"knee beta differs from knee by {numbers['knee_beta_error']:.3g} rad")
  for key, limit in (('max_angular_speed', 'max_speed'), ('max_angular_accel', 'max_accel'),
                     ('slide_mean', 'slide_mean'), ('float_height', 'float_height'),
                     ('penetration', 'penetration')):
    if numbers[key] > lim[limit]:
      out.append(f'{key} {numbers[key]:.4g} > {lim[limit]:.4g}')
  return out


def report(seeds=range(5), num_frames: int = 300, fps: float = 60.0, scales=None,
           families=None) -> str:
  """Markdown table of the measures per family (`families`, default all) over `seeds`
  (the README's numbers).

  Columns: worst penetration and float height (mm), mean stance slide speed (mean over
  clips, mm/s) and its worst 95th percentile, peak angular speed / acceleration, mean
  build time per clip (s; includes FK and IK, after the one-off FK compile).
  """
  skel = project_skeleton()
  kinematics.body_poses(skel, skel.default_coordinates[None])  # compile first
  lines = ['| family | penetration max (mm) | float max (mm) | slide mean (mm/s) | '
           'slide p95 max (mm/s) | ang. speed max (deg/s) | ang. accel max (deg/s^2) | '
           'time / clip (s) | limits broken |',
           '|---|---|---|---|---|---|---|---|---|']
  for name in families or procedural.FAMILIES:
    rows, times, broken = [], [], 0
    for seed in seeds:
      start = time.perf_counter()
      m = procedural.sample_motion(name, seed, fps=fps, num_frames=num_frames, skeleton=skel,
                                   scales=scales)
      times.append(time.perf_counter() - start)
      rows.append(measure(m, skel))
      broken += bool(violations(name, rows[-1]))
    worst = lambda k: max(r[k] for r in rows)  # pylint: disable=cell-var-from-loop
    lines.append(
        f"| {name} | {1e3 * worst('penetration'):.1f} | {1e3 * worst('float_height'):.1f} | "
        f"{1e3 * np.mean([r['slide_mean'] for r in rows]):.1f} | "
        f"{1e3 * worst('slide_p95'):.0f} | {worst('max_angular_speed'):.0f} | "
        f"{worst('max_angular_accel'):.0f} | {np.mean(times):.2f} | {broken}/{len(rows)} |")
  return '\n'.join(lines)


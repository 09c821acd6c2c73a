"""Smooth curve building blocks for the procedural motion library (NumPy only).

* `periodic_keyframes`: a C2 periodic cubic spline through (phase %, value) keys,
  used for cyclic movements written as normative curves over a cycle.
* `gait_phase_warp`: a smooth monotonic re-timing of a gait cycle so that toe-off
  falls at a sampled stance fraction.
* `minimum_jerk` and `keyframe_timeline`: point-to-point movements between
  postures (zero velocity and acceleration at every key, Flash & Hogan 1985).
* `smooth_noise`: low-frequency "style" perturbations (sums of slow sinusoids).
* `soft_clip`: keeps a curve inside a range without the kinks of a hard clip.

All angles in these helpers are whatever unit the caller uses; the families work
in degrees and convert to radians once.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import interpolate


def periodic_keyframes(keys: Sequence[tuple[float, float]], phase) -> np.ndarray:
  """Periodic cubic spline through keys, evaluated at `phase` (cycles, any real).

  Args:
    keys: (phase in % of the cycle in [0, 100), value) pairs, increasing phase.
    phase: array of phases in cycles (1.0 = one cycle); wrapped modulo 1.

  Returns:
    Array shaped like `phase`.
  """
  p = np.array([k[0] for k in keys], dtype=np.float64) / 100.0
  v = np.array([k[1] for k in keys], dtype=np.float64)
  if p.ndim != 1 or len(p) < 3 or np.any(np.diff(p) <= 0) or p[0] < 0 or p[-1] >= 1:
    raise ValueError(f'keys need >= 3 increasing phases in [0, 100), got {list(keys)}')
  spline = interpolate.CubicSpline(np.append(p, p[0] + 1.0), np.append(v, v[0]),
                                   bc_type='periodic')
  x = np.mod(np.asarray(phase, dtype=np.float64) - p[0], 1.0) + p[0]
  return spline(x)


def gait_phase_warp(phase, toe_off: float, reference_toe_off: float) -> np.ndarray:
  """Maps actual gait phase (cycles) to the phase of the reference curves.

  The reference curves have toe-off at `reference_toe_off` (fraction of the
  cycle); the generated gait has it at `toe_off`. The warp
  p = phase + c sin(2 pi phase) is smooth, periodic and fixes heel strike (0) and
  mid-cycle; c puts the reference toe-off at the actual one. Monotonic as long as
  |2 pi c| < 1, which the stance fractions used here satisfy by far.
  """
  s = np.sin(2 * np.pi * toe_off)
  c = 0.0 if abs(s) < 1e-9 else (reference_toe_off - toe_off) / s
  if abs(2 * np.pi * c) >= 0.95:
    raise ValueError(f'stance fraction {toe_off} too far from the reference {reference_toe_off}')
  phase = np.asarray(phase, dtype=np.float64)
  return phase + c * np.sin(2 * np.pi * phase)


def minimum_jerk(s) -> np.ndarray:
  """Minimum-jerk profile 10 s^3 - 15 s^4 + 6 s^5 on s clipped to [0, 1]."""
  s = np.clip(np.asarray(s, dtype=np.float64), 0.0, 1.0)
  return s * s * s * (10.0 + s * (-15.0 + 6.0 * s))


def plateau_blend(s, ramp: float = 0.3) -> np.ndarray:
  """Monotonic 0 -> 1 blend on s in [0, 1] whose rate rises (minimum-jerk shaped)
  over the first `ramp`, stays constant, and falls over the last `ramp`: zero rate
  and acceleration at both ends, peak rate ~1 / (1 - ramp) (minimum jerk: 1.875).
  """
  grid = np.linspace(0.0, 1.0, 2001)
  rate = minimum_jerk(grid / ramp) * minimum_jerk((1.0 - grid) / ramp)
  cum = np.concatenate([[0.0], np.cumsum(0.5 * (rate[1:] + rate[:-1]))])
  return np.interp(np.clip(s, 0.0, 1.0), grid, cum / cum[-1])


def keyframe_timeline(times: Sequence[float], values, t) -> np.ndarray:
  """Minimum-jerk interpolation between keyframes.

  Args:
    times: K increasing key times (seconds).
    values: (K, ...) key values.
    t: (T,) evaluation times; held constant before the first and after the last key.

  Returns:
    (T, ...) values; velocity and acceleration are zero at every key, so segments
    join with C2 continuity.
  """
  times = np.asarray(times, dtype=np.float64)
  values = np.asarray(values, dtype=np.float64)
  if times.ndim != 1 or len(times) != len(values) or np.any(np.diff(times) <= 0):
    raise ValueError('keyframe_timeline: times must be increasing and match values')
  t = np.asarray(t, dtype=np.float64)
  seg = np.clip(np.searchsorted(times, t, side='right') - 1, 0, max(len(times) - 2, 0))
  if len(times) == 1:
    return np.broadcast_to(values[0], t.shape + values.shape[1:]).copy()
  t0, t1 = times[seg], times[seg + 1]
  w = minimum_jerk((t - t0) / (t1 - t0))
  w = w.reshape(w.shape + (1,) * (values.ndim - 1))
  return values[seg] * (1 - w) + values[seg + 1] * w


def smooth_noise(rng: np.random.Generator, t, num_channels: int, amplitude,
                 min_hz: float = 0.1, max_hz: float = 0.6,
                 num_terms: int = 3) -> np.ndarray:
  """Smooth random perturbations: per channel a sum of slow sinusoids.

  Args:
    rng: random generator (consumed: 3 * num_terms * num_channels draws).
    t: (T,) times in seconds.
    num_channels: number of independent channels.
    amplitude: scalar or (num_channels,) standard deviation of each channel.
    min_hz, max_hz: frequency band of the terms (uniform).
    num_terms: sinusoids per channel.

  Returns:
    (T, num_channels). Peak speed <= 2 pi max_hz sqrt(2 num_terms) * amplitude.
  """
  t = np.asarray(t, dtype=np.float64)
  freq = rng.uniform(min_hz, max_hz, size=(num_terms, num_channels))
  phase = rng.uniform(0.0, 2 * np.pi, size=(num_terms, num_channels))
  weight = rng.normal(size=(num_terms, num_channels))
  weight /= np.sqrt(np.sum(weight ** 2, axis=0, keepdims=True) + 1e-12)
  # Each term sin() has std 1/sqrt(2); normalised weights give std 1/sqrt(2) in
  # total, hence the sqrt(2).
  terms = np.sin(2 * np.pi * freq[None] * t[:, None, None] + phase[None])
  return np.sqrt(2.0) * np.einsum('tkc,kc->tc', terms, weight) * np.asarray(amplitude)


def soft_clip(x, lo, hi, width) -> np.ndarray:
  """Identity inside [lo + width, hi - width], smoothly saturating towards lo / hi.

  Uses a tanh shoulder of the given width on each side: the result never leaves
  (lo, hi) and is C2 (value, slope and curvature continuous).
  """
  x = np.asarray(x, dtype=np.float64)
  lo, hi, width = (np.asarray(v, dtype=np.float64) for v in (lo, hi, width))
  a, b = lo + width, hi - width
  above = b + width * np.tanh((x - b) / width)
  below = a + width * np.tanh((x - a) / width)
  return np.where(x > b, above, np.where(x < a, below, x))

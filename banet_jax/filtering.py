"""Zero-lag low-pass filtering of trajectories: landmarks and OpenSim coordinates.

Biomechanics filters kinematics before it reads them: Pose2Sim low-passes its triangulated
points (Butterworth, 6 Hz, 4th order, zero lag), and OpenSim users their marker and
coordinate files. Both methods of the front end use the one filter here:
* the keypoint method (`keypoints.solve_keypoints`) filters the triangulated landmarks
  (`filter_points`) before inverse kinematics;
* BANet (`predict.predict_capture`) filters its per-frame coordinates
  (`filter_coordinates`), since the network predicts each frame (stage 1) or each chunk
  (stage 2) with frame-to-frame noise far above the motion's: the shipped model's joint
  angles on the Pose2Sim demo have a mean |second difference| of 2.4 deg / frame^2,
  against 0.27 for ODAH's ground-truth motion (MODEL_CARD.md).

Conventions: time is the first axis, sampled at `fps`; NaN marks a missing sample.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage, signal

CUTOFF_HZ = 6.0  # Pose2Sim's default Butterworth: 6 Hz, 4th order, zero lag
FILTER_ORDER = 4
# Gaps (NaN runs inside a clip) up to this long are bridged linearly before filtering:
# 10 frames at 60 fps, one period of the 6 Hz cutoff, so the bridge replaces little that
# the filter would keep (Pose2Sim's demo bridges up to 20 frames). Longer gaps, and
# gaps at the start or end (nothing to bridge to), stay NaN.
MAX_GAP_S = 1.0 / 6.0


def _padlen(sos: np.ndarray) -> int:
  """Samples filtfilt pads each end with: scipy's default for second-order sections
  without zero coefficients (a Butterworth low-pass has none), 3 (2 n_sections + 1)."""
  return 3 * (2 * len(sos) + 1)


def filter_points(points, fps: float, cutoff_hz: float = CUTOFF_HZ, order: int = FILTER_ORDER,
                  *, max_gap_s: float = MAX_GAP_S) -> np.ndarray:
  """Zero-lag low-pass Butterworth of every coordinate of a trajectory.

  The filter of order `order` is a Butterworth of order `order` / 2 run forwards and
  backwards (`scipy.signal.sosfiltfilt`: zero phase, the magnitude squared), as Pose2Sim
  does (`butter(order / 2, ...)` + `filtfilt`): at the cutoff the response is 1/2, not
  1/sqrt(2). Per series (one coordinate of one point):
  * a NaN run inside the series of at most `max_gap_s` is bridged linearly
    (`np.interp`) and filtered with the rest; longer runs, and runs at either end, stay
    NaN and split the series into pieces filtered separately;
  * a piece no longer than filtfilt's padding, 3 (2 n + 1) samples for n second-order
    sections (9 for order 4, 15 for order 8: scipy needs more than it pads with), is
    returned unfiltered (a too-short clip entirely).

  Args:
    points: (T, ...) e.g. (T, 33, 3) metres; NaN where missing. T is time.
    fps: sampling rate (Hz).
    cutoff_hz: cutoff frequency (Hz), below fps / 2.
    order: even overall order (each pass order / 2).
    max_gap_s: longest gap (seconds) bridged.

  Returns:
    (T, ...) float64, the same shape.
  """
  points = np.asarray(points, np.float64)
  if points.ndim < 1:
    raise ValueError(f'points must have a time axis first, got shape {points.shape}')
  if not np.isfinite(fps) or fps <= 0:
    raise ValueError(f'fps must be positive, got {fps}')
  if not 0.0 < cutoff_hz < fps / 2.0:
    raise ValueError(f'cutoff {cutoff_hz} Hz must be between 0 and the Nyquist frequency '
                     f'{fps / 2:g} Hz of {fps:g} fps; lower the cutoff')
  if order < 2 or order % 2:
    raise ValueError(f'order must be even and >= 2 (the filter runs twice), got {order}')
  sos = signal.butter(order // 2, cutoff_hz, btype='low', fs=fps, output='sos')
  padlen = _padlen(sos)
  max_gap = int(np.floor(max_gap_s * fps + 1e-9))
  flat = points.reshape(len(points), -1)
  out = np.empty_like(flat)
  frames = np.arange(len(points))
  for k in range(flat.shape[1]):
    x = flat[:, k].copy()
    finite = np.isfinite(x)
    if finite.any():
      gaps, _ = ndimage.label(~finite)
      for (run,) in ndimage.find_objects(gaps):
        if run.start > 0 and run.stop < len(x) and run.stop - run.start <= max_gap:
          x[run] = np.interp(frames[run], frames[finite], flat[finite, k])
      pieces, _ = ndimage.label(np.isfinite(x))
      for (run,) in ndimage.find_objects(pieces):
        if run.stop - run.start > padlen:
          x[run] = signal.sosfiltfilt(sos, x[run], padlen=padlen)
    out[:, k] = x
  return out.reshape(points.shape)


def filter_coordinates(skel, coordinates, fps: float, cutoff_hz: float = CUTOFF_HZ,
                       order: int = FILTER_ORDER) -> np.ndarray:
  """`filter_points` on OpenSim coordinates, with rotations filtered across +-pi.

  A rotational coordinate that wraps (a pelvis rotation near 180 deg jumping to -180) is
  unwrapped before filtering and put back on its original branch after, so the filter
  never sees a 360-deg step. Translations and coupled coordinates are filtered as they
  are.

  Args:
    skel: the `Skeleton` the coordinates refer to (`skel.rotational` tells the angles).
    coordinates: (T, C) radians / metres in `skel.coordinate_names` order.
    fps, cutoff_hz, order: as `filter_points`.

  Returns:
    (T, C) float64, the same units.
  """
  q = np.asarray(coordinates, np.float64)
  if q.ndim != 2 or q.shape[1] != len(skel.coordinate_names):
    raise ValueError(f'coordinates must be (T, {len(skel.coordinate_names)}) in the order of '
                     f'skel.coordinate_names, got shape {q.shape}')
  rotational = np.asarray(skel.rotational)
  unwrapped = q.copy()
  finite = np.isfinite(q).all(axis=1)
  unwrapped[np.ix_(finite, rotational)] = np.unwrap(q[np.ix_(finite, rotational)], axis=0)
  branch = q - unwrapped  # multiples of 2 pi on the rotations, 0 elsewhere
  return filter_points(unwrapped, fps, cutoff_hz, order) + branch

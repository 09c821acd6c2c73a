"""banet_jax.filtering: the zero-lag Butterworth of landmarks and coordinates."""

import numpy as np
import pytest

from banet_jax import filtering
from banet_jax.skeleton import load_osim

FPS = 60.0


@pytest.fixture(scope='module')
def skel(project_model_path):
  return load_osim(str(project_model_path))


def test_filter_keeps_slow_motion_and_removes_fast():
  t = np.arange(240) / FPS
  slow, fast = np.sin(2 * np.pi * 1.0 * t), np.sin(2 * np.pi * 15.0 * t)
  out = filtering.filter_points(np.stack([slow, fast, slow + 0.2 * fast], axis=1), FPS)
  middle = slice(30, 210)  # away from the ends
  np.testing.assert_allclose(out[middle, 0], slow[middle], atol=0.01)
  assert np.abs(out[middle, 1]).max() < 0.05  # 15 Hz: |H|^2 ~ 0.02 at 6 Hz, 4th order
  np.testing.assert_allclose(out[middle, 2], slow[middle], atol=0.02)
  np.testing.assert_array_equal(out, filtering.filter_points(
      np.stack([slow, fast, slow + 0.2 * fast], axis=1), FPS))  # deterministic


def test_filter_bridges_short_gaps_and_keeps_long_ones():
  t = np.arange(200) / FPS
  x = np.sin(2 * np.pi * 0.5 * t)[:, None, None] * np.ones((1, 2, 3))
  x[:3] = np.nan              # at the start: nothing to bridge from
  x[50:58, 0] = np.nan        # 8 frames: bridged
  x[100:125, 0] = np.nan      # 25 frames: kept
  out = filtering.filter_points(x, FPS)
  assert np.isnan(out[:3]).all() and np.isnan(out[100:125, 0]).all()
  np.testing.assert_allclose(out[50:58, 0], np.sin(2 * np.pi * 0.5 * t[50:58])[:, None]
                             * np.ones(3), atol=0.01)
  assert np.isfinite(out[3:100]).all() and np.isfinite(out[125:]).all()
  short = np.random.default_rng(0).normal(size=(9, 3))  # not longer than the padding
  np.testing.assert_array_equal(filtering.filter_points(short, FPS), short)
  with pytest.raises(ValueError, match='Nyquist'):
    filtering.filter_points(x, 10.0)
  with pytest.raises(ValueError, match='even'):
    filtering.filter_points(x, FPS, order=3)


def test_coordinates_are_filtered_across_the_wrap_of_a_rotation(skel):
  """A pelvis rotation turning through 180 deg: wrapped, it jumps by 360 deg; filtered, it
  must stay the smooth turn (on the branch of each input frame), while every other
  coordinate is filtered as `filter_points` filters it."""
  t = np.arange(180) / FPS
  rng = np.random.default_rng(0)
  q = np.zeros((len(t), len(skel.coordinate_names)))
  knee = skel.coordinate_index('knee_angle_r')
  rot = skel.coordinate_index('pelvis_rotation')
  tx = skel.coordinate_index('pelvis_tx')
  q[:, knee] = 0.6 + 0.4 * np.sin(2 * np.pi * t) + rng.normal(0, 0.05, len(t))
  turn = np.radians(150.0) + np.radians(60.0) * t  # 150 -> 210 deg
  q[:, rot] = np.radians(150.0) + np.radians(60.0) * t
  q[:, rot] = (q[:, rot] + np.pi) % (2 * np.pi) - np.pi  # jumps from +180 to -180
  q[:, tx] = 0.5 * t + rng.normal(0, 0.01, len(t))
  out = filtering.filter_coordinates(skel, q, FPS)
  assert out.shape == q.shape and out.dtype == np.float64
  # The turn: the smooth turn (a ramp passes a zero-lag low-pass but for 1e-4 rad at the
  # ends), each frame on its own input branch (no 360-deg step anywhere).
  np.testing.assert_allclose(np.abs(out[:, rot] - q[:, rot]), 0.0, atol=1e-3)
  np.testing.assert_allclose(np.unwrap(out[:, rot]), turn, atol=1e-3)
  assert np.abs(np.diff(out[:, rot])).max() > np.pi  # the jump stays where the input has it
  # Other coordinates: exactly the point filter's result, and smoother than the input.
  for i in (knee, tx):
    np.testing.assert_allclose(out[:, i], filtering.filter_points(q[:, i], FPS), atol=1e-12)
  second = lambda x: np.abs(np.diff(x, 2)).mean()
  assert second(out[:, knee]) < 0.2 * second(q[:, knee])
  clean = 0.6 + 0.4 * np.sin(2 * np.pi * t)  # the 1-Hz motion under 0.05-rad noise
  # White noise keeps about the 6-of-30-Hz share of its power: the error about halves.
  assert np.abs(out[:, knee] - clean).mean() < 0.6 * np.abs(q[:, knee] - clean).mean()
  with pytest.raises(ValueError, match='coordinate_names'):
    filtering.filter_coordinates(skel, q[:, :5], FPS)

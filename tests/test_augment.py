"""Tests of banet_jax/augment.py: the real-capture degradations of ODAH training views."""

import dataclasses

import cv2
import numpy as np
import pytest

from banet_jax import augment, data


def _person(size: int = 128) -> tuple[np.ndarray, np.ndarray]:
  """A stick person mask (torso, head, limbs) on a textured crop."""
  mask = np.zeros((size, size), np.uint8)
  s = size / 128
  cv2.ellipse(mask, (int(64 * s), int(50 * s)), (int(14 * s), int(26 * s)), 0, 0, 360, 1, -1)
  cv2.circle(mask, (int(64 * s), int(16 * s)), int(9 * s), 1, -1)
  for a, b in (((56, 74), (50, 120)), ((72, 74), (80, 120)), ((52, 30), (30, 70)),
               ((76, 30), (100, 70))):
    cv2.line(mask, tuple(int(v * s) for v in a), tuple(int(v * s) for v in b), 1,
             max(1, int(6 * s)))
  rng = np.random.default_rng(0)
  crop = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
  return crop, mask


def test_identity_draws_nothing_and_returns_the_inputs():
  crop, mask = _person()
  rng = np.random.default_rng(1)
  state = rng.bit_generator.state
  out_crop, out_mask = augment.degrade_view(crop, mask, rng, augment.PRESETS['none'])
  assert out_crop is crop and out_mask is mask
  assert rng.bit_generator.state == state


def test_real_degradations_are_deterministic_and_within_their_ranges():
  crop, mask = _person()
  config = augment.PRESETS['real']
  area = mask.sum()
  changed = 0
  for seed in range(60):
    a = augment.degrade_view(crop, mask, np.random.default_rng(seed), config)
    b = augment.degrade_view(crop, mask, np.random.default_rng(seed), config)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    out_crop, out_mask = a
    assert out_crop.dtype == np.uint8 and out_crop.shape == crop.shape
    assert out_mask.dtype == np.uint8 and set(np.unique(out_mask)) <= {0, 1}
    assert out_mask.sum() >= config.min_area_kept * area
    # Nothing appears far from the person: every added pixel lies within the largest
    # reach of the morphology, the outline noise and a blob.
    reach = int(np.ceil(128 * (config.morph_range[1] + 3 * config.boundary_amplitude
                                + config.blob_size_range[1]))) + 2
    near = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1,) * 2))
    assert not np.any(out_mask & (1 - near)), seed
    changed += int(np.any(out_mask != mask))
    # Exposure: the mean brightness stays within the gain and gamma ranges' reach.
    assert 0.2 * crop.mean() < out_crop.mean() < 2.5 * crop.mean() + 10
  assert changed >= 50  # the 'real' preset changes nearly every mask


def test_each_mask_corruption_acts_as_documented():
  crop, mask = _person()
  base = augment.Degradation()
  grow = dataclasses.replace(base, morph_probability=1.0, morph_range=(0.03, 0.03))
  shrink = dataclasses.replace(base, morph_probability=1.0, morph_range=(-0.01, -0.01),
                               min_area_kept=0.1)
  grown = augment.degrade_mask(mask, np.random.default_rng(0), grow)
  shrunk = augment.degrade_mask(mask, np.random.default_rng(0), shrink)
  assert np.all(grown >= mask) and grown.sum() > 1.2 * mask.sum()
  assert np.all(shrunk <= mask) and shrunk.sum() < mask.sum()
  holes = dataclasses.replace(base, holes_probability=1.0, holes_max=2)
  assert np.all(augment.degrade_mask(mask, np.random.default_rng(0), holes) <= mask)
  limb = dataclasses.replace(base, limb_loss_probability=1.0, limb_loss_radius_range=(0.05, 0.05))
  lost = augment.degrade_mask(mask, np.random.default_rng(0), limb)
  assert np.all(lost <= mask) and lost.sum() < mask.sum()
  # The erased disc is at an extremity, far from the mask's centroid.
  ys, xs = np.nonzero(mask & (1 - lost))
  yc, xc = np.nonzero(mask)
  assert np.hypot(ys.mean() - yc.mean(), xs.mean() - xc.mean()) > 30
  blob = dataclasses.replace(base, blob_probability=1.0)
  assert np.all(augment.degrade_mask(mask, np.random.default_rng(0), blob) >= mask)
  # A corruption that would remove too much is undone.
  gone = dataclasses.replace(base, morph_probability=1.0, morph_range=(-0.3, -0.3))
  np.testing.assert_array_equal(augment.degrade_mask(mask, np.random.default_rng(0), gone), mask)


def test_image_degradations_and_config_checks():
  crop, _ = _person(64)
  jpeg = augment.Degradation(jpeg_probability=1.0, jpeg_quality_range=(20, 20))
  out = augment.degrade_image(crop, np.random.default_rng(0), jpeg)
  assert out.shape == crop.shape and np.abs(out.astype(int) - crop).mean() > 5
  noise = augment.Degradation(noise_sigma_range=(10.0, 10.0))
  flat = np.full((64, 64, 3), 128, np.uint8)
  noisy = augment.degrade_image(flat, np.random.default_rng(0), noise)
  assert 8.0 < noisy.astype(float).std() < 12.0
  with pytest.raises(ValueError, match='blur_probability'):
    augment.Degradation(blur_probability=1.5)
  with pytest.raises(ValueError, match='morph_range'):
    augment.Degradation(morph_range=(0.1, -0.1))
  with pytest.raises(ValueError, match='uint8'):
    augment.degrade_image(crop.astype(np.float32), np.random.default_rng(0), noise)
  with pytest.raises(ValueError, match='augment must be one of'):
    data.PipelineConfig(stage=1, batch_size=2, image_size=64, num_points=8, chunk_length=8,
                        augment='heavy')

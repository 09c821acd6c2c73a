"""BANet's output decoding and loss terms (banet_jax/model/outputs.py, banet_jax/losses.py)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from banet_jax import losses
from banet_jax.model import outputs
from banet_jax.skeleton import load_osim


@pytest.fixture(autouse=True)
def _x64():
  with jax.enable_x64(True):
    yield


@pytest.fixture(scope='module')
def layout(project_model_path):
  return outputs.output_layout(load_osim(project_model_path))


def _random_pose(layout, rng, batch=()):
  skel = layout.skeleton
  lo, hi = skel.coordinate_ranges[:, 0], skel.coordinate_ranges[:, 1]
  coords = rng.uniform(lo, hi, size=batch + (skel.num_coordinates,))
  scales = rng.uniform(0.85, 1.15, size=batch + (skel.num_bodies, 3))
  return coords, scales


def test_layout_of_project_model_is_banets(layout):
  assert layout.out_dim == 102 and layout.num_predicted == 36
  assert [layout.skeleton.coordinate_names[i] for i in layout.global_translation] == [
      'pelvis_tx', 'pelvis_ty', 'pelvis_tz']
  assert layout.num_points == 44
  assert layout.root_point == 22  # the ground_pelvis joint centre, as official
  groups = losses.coordinate_groups(layout)
  names = np.array(layout.skeleton.coordinate_names)
  assert set(names[groups.periodic > 0]) == set(losses.OFFICIAL_PERIODIC_COORDINATES)
  assert groups.plain.sum() == 27  # the official NORM_ANGLES / RANGE_ANGLES set
  assert not np.any(groups.plain[layout.global_translation])


def test_decode_encode(layout):
  rng = np.random.default_rng(0)
  raw = rng.normal(size=(3, layout.out_dim))
  coords, scales = outputs.decode(layout, raw)
  assert coords.shape == (3, 39) and scales.shape == (3, 22, 3)
  np.testing.assert_array_equal(np.asarray(coords)[:, layout.global_translation], 0.0)
  np.testing.assert_allclose(scales, raw[:, 36:].reshape(3, 22, 3) / 8 + 1)
  np.testing.assert_allclose(outputs.encode(layout, coords, scales), raw, atol=1e-12)
  with pytest.raises(ValueError, match='102'):
    outputs.decode(layout, raw[:, :-1])


def test_layout_follows_any_model(extra_osim_path):
  skel = load_osim(extra_osim_path)
  layout = outputs.output_layout(skel)
  assert layout.out_dim == layout.num_predicted + 3 * skel.num_bodies
  coords, scales = outputs.decode(layout, jnp.zeros((2, layout.out_dim)))
  points = outputs.skeleton_points(layout, coords, scales)
  assert points.shape == (2, skel.num_bodies + len(skel.joint_names), 3)
  terms = losses.banet_losses(layout, coords, scales, coords, scales)
  assert float(terms['total']) == pytest.approx(0.0, abs=1e-9)


def _reference_terms(layout, pq, ps, gq, gs, pp, gp):
  """The official formulas written out in numpy, one index at a time."""
  free = [layout.skeleton.coordinate_index(n) for n in losses.OFFICIAL_PERIODIC_COORDINATES]
  norm = [i for i in layout.predicted if i not in free]
  lo, hi = layout.skeleton.coordinate_ranges.T
  angle = (np.mean([abs(np.cos(pq[b, i]) - np.cos(gq[b, i])) + abs(np.sin(pq[b, i]) - np.sin(gq[b, i]))
                    for b in range(len(pq)) for i in free])
           + np.mean([abs(pq[b, i] - gq[b, i]) for b in range(len(pq)) for i in norm]))
  rng_terms = []
  for b in range(len(pq)):
    for i in norm:
      x = pq[b, i]
      rng_terms.append(min(abs(x - lo[i]), abs(x - hi[i])) if (x < lo[i] or x > hi[i]) else 0.0)
  root = layout.root_point
  point = np.mean(np.abs((pp - pp[:, root:root + 1]) - (gp - gp[:, root:root + 1])))
  return {'angle': angle, 'scale': np.mean(np.abs(ps - gs)), 'point': point,
          'range': np.mean(rng_terms)}


def test_terms_match_official_formulas(layout):
  rng = np.random.default_rng(1)
  gq, gs = _random_pose(layout, rng, (4,))
  pq, ps = _random_pose(layout, rng, (4,))
  pq = pq * 1.3  # push some coordinates outside their ranges
  pq[:, layout.global_translation] = 0.0
  terms = losses.banet_losses(layout, pq, ps, gq, gs)
  pp = np.asarray(outputs.skeleton_points(layout, pq, ps))
  gp = np.asarray(outputs.skeleton_points(layout, gq, gs))
  ref = _reference_terms(layout, pq, ps, gq, gs, pp, gp)
  assert ref['range'] > 0
  for name, value in ref.items():
    assert float(terms[name]) == pytest.approx(value, rel=1e-10), name
  total = ref['angle'] + ref['scale'] + 100 * ref['point'] + ref['range']
  assert float(terms['total']) == pytest.approx(total, rel=1e-10)
  assert set(terms) == {'angle', 'scale', 'point', 'range', 'total'}  # extras off


def test_point_loss_zero_for_same_pose_and_translation_invariant(layout):
  rng = np.random.default_rng(2)
  gq, gs = _random_pose(layout, rng, (3,))
  pq = gq.copy()
  pq[:, layout.global_translation] = 0.0  # BANet predicts no translation
  terms = losses.banet_losses(layout, pq, gs, gq, gs)
  for name in ('angle', 'scale', 'point', 'range', 'total'):
    assert float(terms[name]) == pytest.approx(0.0, abs=1e-12), name
  # Moving the ground truth's pelvis changes nothing in the point term.
  moved = gq.copy()
  moved[:, layout.global_translation] += rng.normal(size=(3, 3))
  assert float(losses.banet_losses(layout, pq, gs, moved, gs)['point']) == pytest.approx(
      0.0, abs=1e-12)
  # But a different pose does.
  other = pq.copy()
  other[:, layout.skeleton.coordinate_index('knee_angle_r')] += 0.3
  assert float(losses.banet_losses(layout, other, gs, gq, gs)['point']) > 1e-4


def test_angle_loss_wraps_only_periodic_coordinates(layout):
  skel = layout.skeleton
  gq = np.tile(skel.default_coordinates, (1, 1))
  gq[:, layout.global_translation] = 0.0
  for name, wraps in (('pelvis_rotation', True), ('arm_add_l', True), ('hip_flexion_r', False)):
    pq = gq.copy()
    pq[0, skel.coordinate_index(name)] += 2 * np.pi
    angle = float(losses.banet_losses(layout, pq, np.ones((1, 22, 3)), gq,
                                      np.ones((1, 22, 3)))['angle'])
    assert (angle < 1e-9) == wraps, name


def test_joint_limit_loss_zero_inside_positive_outside_gradient_inward(layout):
  skel = layout.skeleton
  groups = losses.coordinate_groups(layout)
  lo, hi = skel.coordinate_ranges.T
  inside = np.where(groups.plain > 0, (lo + hi) / 2, 0.0)[None]
  assert float(losses.range_loss(layout, inside, groups)) == 0.0
  grad_inside = jax.grad(lambda q: losses.range_loss(layout, q, groups))(inside)
  np.testing.assert_array_equal(grad_inside, 0.0)
  k = skel.coordinate_index('knee_angle_r')
  for offset, inward in ((hi[k] + 0.2, -1.0), (lo[k] - 0.2, 1.0)):
    q = inside.copy()
    q[0, k] = offset
    loss = float(losses.range_loss(layout, q, groups))
    assert loss == pytest.approx(0.2 / groups.plain.sum())
    grad = np.asarray(jax.grad(lambda q: losses.range_loss(layout, q, groups))(q))
    # A gradient step (q - lr * grad) moves the coordinate back towards the range.
    assert np.sign(-grad[0, k]) == inward
    assert np.count_nonzero(grad) == 1
  # Periodic coordinates have no range term (as the official RANGE set).
  q = inside.copy()
  q[0, skel.coordinate_index('arm_add_r')] = 10.0
  assert float(losses.range_loss(layout, q, groups)) == 0.0


def test_extras_behind_options(layout):
  rng = np.random.default_rng(3)
  gq, gs = _random_pose(layout, rng, (2, 5))  # (batch, time)
  pq, ps = gq + rng.normal(scale=0.05, size=gq.shape), gs
  pq[..., layout.global_translation] = 0.0
  cams = _two_cameras(batch=2)
  config = losses.LossConfig(reprojection_weight=0.1, velocity_weight=1.0,
                             acceleration_weight=1.0, scale_smoothness_weight=1.0)
  terms = losses.banet_losses(layout, pq, ps, gq, gs, config, cameras=cams)
  for name in ('reprojection', 'velocity', 'acceleration', 'scale_smoothness'):
    assert np.isfinite(float(terms[name])) and float(terms[name]) > 0, name
  expected = (terms['angle'] + terms['scale'] + 100 * terms['point'] + terms['range']
              + 0.1 * terms['reprojection'] + terms['velocity'] + terms['acceleration']
              + terms['scale_smoothness'])
  assert float(terms['total']) == pytest.approx(float(expected), rel=1e-12)
  # Perfect predictions (translation dropped) give zero reprojection/velocity/acceleration.
  same = gq.copy()
  same[..., layout.global_translation] = 0.0
  perfect = losses.banet_losses(layout, same, gs, gq, gs, config, cameras=cams)
  for name in ('reprojection', 'velocity', 'acceleration'):
    assert float(perfect[name]) == pytest.approx(0.0, abs=1e-10), name
  # Uniform, equal scales have no smoothness penalty.
  uniform = losses.banet_losses(layout, same, np.ones_like(gs), gq, gs, config, cameras=cams)
  assert float(uniform['scale_smoothness']) == 0.0
  with pytest.raises(ValueError, match='cameras'):
    losses.banet_losses(layout, pq, ps, gq, gs, losses.LossConfig(reprojection_weight=1.0))
  with pytest.raises(ValueError, match='time axis'):
    losses.banet_losses(layout, pq[:, 0], ps[:, 0], gq[:, 0], gs[:, 0],
                        losses.LossConfig(velocity_weight=1.0))


def _two_cameras(batch):
  """A front camera (looking along -x) and a side camera (looking along -z), 4 m away."""
  def look(position):  # camera z axis (viewing direction) towards the origin
    z = -np.asarray(position, float) * np.array([1.0, 0.0, 1.0])
    z /= np.linalg.norm(z)
    y = np.array([0.0, -1.0, 0.0])
    x = np.cross(y, z)
    r = np.stack([x, y, z])
    return r, -r @ np.asarray(position, float)
  r0, t0 = look([4, 1, 0])
  r1, t1 = look([0, 1, 4])
  k = np.array([[500.0, 0, 320], [0, 500.0, 240], [0, 0, 1]])
  tile = lambda a: np.broadcast_to(a, (batch,) + a.shape).copy()
  return {'K': tile(np.stack([k, k])), 'R': tile(np.stack([r0, r1])),
          't': tile(np.stack([t0, t1])),
          'crop_meta': tile(np.array([[160.0, 40.0, 1.5], [160.0, 40.0, 1.5]])),
          'crop_size': 256}

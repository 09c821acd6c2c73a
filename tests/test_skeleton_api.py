"""The skeleton layer's API: shapes, dtypes, jit/vmap/grad, limits, functions."""

from __future__ import annotations

import dataclasses
import functools
import os
import subprocess
import sys
import tempfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from banet_jax.skeleton import (coordinate_limit_penalty, forward_kinematics, functions,
                                load_osim)
from banet_jax.skeleton.models import DEFAULT_MODEL_PATH, load_model, project_skeleton
from banet_jax.skeleton.osim_parser import file_sha256



@pytest.fixture(scope='module', autouse=True)
def _compile_fast(fast_compile):  # every batch shape compiles FK again; each runs once
  del fast_compile


@pytest.fixture(autouse=True)
def _float64():
  """These tests compare in float64; x64 is switched on for them only."""
  with jax.enable_x64(True):
    yield


@functools.lru_cache(maxsize=None)
def _skel():
  return load_osim(DEFAULT_MODEL_PATH)


@functools.lru_cache(maxsize=None)
def _fk():
  return jax.jit(forward_kinematics, static_argnames=('enforce_couplers',))


def _random_q(skel, shape, seed=0):
  lo, hi = skel.coordinate_ranges.T
  return np.random.default_rng(seed).uniform(lo, hi, size=shape + (skel.num_coordinates,))


def test_skeleton_is_immutable_and_describes_the_model():
  skel = _skel()
  assert len(skel.coordinate_names) == 39 and len(skel.body_names) == 22
  assert skel.coordinate_ranges.shape == (39, 2)
  assert skel.default_coordinates.shape == (39,)
  assert skel.rotational.sum() + skel.translational.sum() + sum(
      t == 'coupled' for t in skel.coordinate_motion_types) == 39
  assert skel.translational[skel.coordinate_index('pelvis_tx')]
  assert skel.dependent[skel.coordinate_index('knee_angle_r_beta')]
  with pytest.raises(dataclasses.FrozenInstanceError):
    skel.body_names = ()
  with pytest.raises(KeyError, match='no coordinate named'):
    skel.coordinate_index('not_a_coordinate')


def test_identity_is_the_file_content(tmp_path):
  """One owner of skeleton identity: load_osim caches by content, skeletons of equal
  content are equal, share jit compilations, and a changed file is read anew."""
  skel = _skel()
  assert load_osim(DEFAULT_MODEL_PATH) is skel  # no second parse
  assert skel.content_hash == file_sha256(DEFAULT_MODEL_PATH)
  assert project_skeleton() is skel and load_model(None) is skel
  copy = tmp_path / 'copy.osim'
  copy.write_bytes(DEFAULT_MODEL_PATH.read_bytes())
  again = load_osim(copy)
  assert again is not skel and again == skel and hash(again) == hash(skel)
  assert again.source == str(copy)  # errors and exports name the file it came from

  calls = []

  @jax.jit
  def count(s, q):
    calls.append(1)  # runs while tracing only
    return forward_kinematics(s, q).joint_centers

  q = jnp.zeros(skel.num_coordinates)
  count(skel, q)
  count(again, q)
  assert len(calls) == 1  # equal content: one compilation

  changed = tmp_path / 'changed.osim'
  changed.write_text(DEFAULT_MODEL_PATH.read_text().replace(
      '<Model name="banet_fullbody">', '<Model name="renamed">', 1))
  other = load_osim(changed)
  assert other != skel and other.model_name == 'renamed'
  count(other, q)
  assert len(calls) == 2

  derived = skel.derive(clamped=~skel.clamped)
  assert derived != skel and derived.content_hash != skel.content_hash
  assert derived == skel.derive(clamped=~skel.clamped)  # the same change: the same identity
  assert not derived.clamped.flags.writeable
  with pytest.raises(ValueError, match='read-only'):
    skel.coordinate_ranges[0, 0] = 0.0  # shared by every holder: never mutated in place


@pytest.mark.parametrize('batch', [(), (5,), (2, 3)])
def test_any_leading_batch_shape(batch):
  skel = _skel()
  q = _random_q(skel, batch)
  scales = np.random.default_rng(1).uniform(0.8, 1.2, batch + (skel.num_bodies, 3))
  out = _fk()(skel, q, scales)
  B, J, M = skel.num_bodies, len(skel.joint_names), len(skel.marker_names)
  assert out.body_positions.shape == batch + (B, 3)
  assert out.body_rotations.shape == batch + (B, 3, 3)
  assert out.joint_centers.shape == batch + (J, 3)
  assert out.centers_of_mass.shape == batch + (B, 3)
  assert out.markers.shape == batch + (M, 3)
  flat = _fk()(skel, q.reshape(-1, skel.num_coordinates), scales.reshape(-1, B, 3))
  np.testing.assert_allclose(out.markers.reshape(-1, M, 3), flat.markers, atol=1e-12)


def test_scales_broadcast_and_default_to_the_file_model():
  skel = _skel()
  q = _random_q(skel, (4,))
  one_set = np.random.default_rng(2).uniform(0.8, 1.2, (skel.num_bodies, 3))
  broadcast = _fk()(skel, q, one_set)
  explicit = _fk()(skel, q, np.broadcast_to(one_set, (4,) + one_set.shape))
  np.testing.assert_allclose(broadcast.markers, explicit.markers, atol=1e-12)
  # The project model has only axis-aligned CustomJoint translation axes, for
  # which OpenSim's scaling with factors of one is the identity.
  unscaled = _fk()(skel, q, None)
  ones = _fk()(skel, q, np.ones((skel.num_bodies, 3)))
  np.testing.assert_allclose(unscaled.markers, ones.markers, atol=1e-12)


def test_vmap_and_jit_agree_with_batched_call():
  skel = _skel()
  q = _random_q(skel, (3,))
  batched = _fk()(skel, q).markers
  mapped = jax.jit(jax.vmap(lambda x: forward_kinematics(skel, x).markers))(q)
  np.testing.assert_allclose(mapped, batched, atol=1e-12)


@pytest.mark.parametrize('dtype', [jnp.float32, jnp.float64])
def test_dtype_is_preserved(dtype):
  skel = _skel()
  q = jnp.asarray(_random_q(skel, (2,)), dtype)
  out = _fk()(skel, q)
  assert all(x.dtype == dtype for x in out)


def test_bad_shapes_raise_clear_errors():
  skel = _skel()
  with pytest.raises(ValueError, match=r'q must have shape \(\.\.\., 39\)'):
    forward_kinematics(skel, np.zeros(38))
  with pytest.raises(ValueError, match=r'scales must have shape \(\.\.\., 22, 3\)'):
    forward_kinematics(skel, np.zeros(39), np.ones((21, 3)))


def test_grad_flows_to_every_coordinate_that_moves_a_marker():
  skel = _skel()
  q = _random_q(skel, ())
  grad = jax.jit(jax.grad(lambda x: jnp.sum(forward_kinematics(skel, x).markers ** 2)))(q)
  assert np.all(np.isfinite(grad))
  # Every coordinate except the couplers' dependents (the patella carries no
  # marker) moves some marker.
  moving = ~skel.dependent
  assert np.all(grad[moving] != 0.0)


def test_enforce_couplers_sets_dependent_coordinates():
  skel = _skel()
  q = _random_q(skel, (2,))
  q_scrambled = q.copy()
  q_scrambled[:, skel.dependent] = 0.5
  q_coupled = q.copy()
  for name in ('r', 'l'):
    q_coupled[:, skel.coordinate_index(f'knee_angle_{name}_beta')] = (
        q[:, skel.coordinate_index(f'knee_angle_{name}')])
  a = _fk()(skel, q_scrambled, enforce_couplers=True)
  b = _fk()(skel, q_coupled)
  np.testing.assert_allclose(a.centers_of_mass, b.centers_of_mass, atol=1e-12)


# ---- coordinate_limit_penalty ------------------------------------------------

@pytest.mark.parametrize('form', ['banet', 'linear', 'squared'])
def test_limit_penalty_zero_inside_positive_outside_gradient_inward(form):
  skel = _skel()
  lo, hi = skel.coordinate_ranges.T
  inside = (lo + hi) / 2
  assert np.all(coordinate_limit_penalty(skel, inside, form=form) == 0.0)
  grad = jax.grad(lambda x: coordinate_limit_penalty(skel, x, form=form, reduction='sum'))
  assert np.all(grad(inside) == 0.0)
  for outside, direction in ((lo - 0.2, -1.0), (hi + 0.2, 1.0)):
    penalty = coordinate_limit_penalty(skel, outside, form=form)
    assert np.all(penalty > 0.0)
    # Gradient descent moves the coordinate back towards the range.
    assert np.all(np.sign(grad(outside)) == direction)


def test_limit_penalty_banet_form_is_distance_to_nearer_bound():
  skel = _skel()
  lo, hi = skel.coordinate_ranges.T
  q = np.where(np.arange(39) % 2 == 0, lo - 0.3, hi + 0.1)
  np.testing.assert_allclose(coordinate_limit_penalty(skel, q, form='banet'),
                             np.where(np.arange(39) % 2 == 0, 0.3, 0.1), atol=1e-12)
  mask = np.zeros(39)
  mask[:5] = 1
  np.testing.assert_allclose(
      coordinate_limit_penalty(skel, q, mask=mask, reduction='mean'),
      np.mean(np.where(np.arange(5) % 2 == 0, 0.3, 0.1)), atol=1e-12)
  with pytest.raises(ValueError, match='form must be one of'):
    coordinate_limit_penalty(skel, q, form='cubic')


# ---- functions against opensim's own -----------------------------------------

def _opensim_function(kind, x, y):
  osim = pytest.importorskip('opensim')
  if kind == 'NaturalCubicSpline':  # not exposed in Python; read it from XML
    with tempfile.NamedTemporaryFile('w', suffix='.xml', delete=False) as f:
      f.write('<?xml version="1.0" encoding="UTF-8" ?><OpenSimDocument Version="40000">'
              f'<NaturalCubicSpline name="f"><x>{" ".join("%.17g" % v for v in x)}</x>'
              f'<y>{" ".join("%.17g" % v for v in y)}</y></NaturalCubicSpline></OpenSimDocument>')
    try:
      return osim.Function.safeDownCast(osim.OpenSimObject.makeObjectFromFile(f.name))
    finally:
      os.unlink(f.name)
  function = getattr(osim, kind)()
  for a, b in zip(x, y):
    function.addPoint(float(a), float(b))
  return function


@pytest.mark.parametrize('kind,build', [
    ('SimmSpline', functions.simm_spline),
    ('NaturalCubicSpline', functions.natural_cubic_spline),
    ('PiecewiseLinearFunction', functions.piecewise_linear),
])
@pytest.mark.parametrize('num_knots', [2, 3, 4, 5, 13])
def test_knot_functions_match_opensim_inside_and_outside_the_knots(kind, build, num_knots):
  osim = pytest.importorskip('opensim')
  rng = np.random.default_rng(num_knots)
  x = np.cumsum(rng.uniform(0.1, 0.5, num_knots)).round(6)
  y = rng.normal(size=num_knots).round(6)
  reference = _opensim_function(kind, x, y)
  samples = np.linspace(x[0] - 1.0, x[-1] + 1.0, 257)
  expected = [reference.calcValue(osim.Vector(1, float(v))) for v in samples]
  np.testing.assert_allclose(build(x, y)(jnp.asarray(samples)), expected, atol=1e-12)


def test_polynomial_and_multiplier_match_opensim():
  osim = pytest.importorskip('opensim')
  coefficients = osim.Vector(4, 0.0)
  for i, c in enumerate([0.3, -0.2, 0.5, 0.05]):
    coefficients.set(i, c)
  polynomial = osim.PolynomialFunction(coefficients)
  ours = functions.Polynomial((0.3, -0.2, 0.5, 0.05))
  for v in (-2.0, 0.0, 0.7):
    assert float(ours(jnp.asarray(v))) == pytest.approx(
        polynomial.calcValue(osim.Vector(1, v)), abs=1e-14)
  spline = functions.simm_spline([0, 1, 2, 3], [0, 1, 0.5, 2])
  assert float(functions.Multiplier(spline, 1.7)(jnp.asarray(2.5))) == pytest.approx(
      1.7 * float(spline(jnp.asarray(2.5))))


def test_spline_gradient_matches_finite_difference_everywhere():
  spline = functions.simm_spline([0.0, 0.3, 0.7, 1.0, 1.6], [0.0, 0.4, 0.1, -0.2, 0.3])
  grad = jax.grad(lambda v: spline(v))
  eps = 1e-6
  for v in (-0.5, 0.15, 0.3 + 1e-3, 0.99, 2.0):  # left of, inside, right of the knots
    numeric = (spline(jnp.asarray(v + eps)) - spline(jnp.asarray(v - eps))) / (2 * eps)
    assert float(grad(jnp.asarray(v))) == pytest.approx(float(numeric), rel=1e-6, abs=1e-8)


def test_knot_validation():
  with pytest.raises(ValueError, match='at least 2 knots'):
    functions.simm_spline([1.0], [2.0])
  with pytest.raises(ValueError, match='strictly increasing'):
    functions.simm_spline([0.0, 0.0, 1.0], [1.0, 2.0, 3.0])
  with pytest.raises(ValueError, match='x has 3 values but y has 2'):
    functions.piecewise_linear([0.0, 1.0, 2.0], [1.0, 2.0])


def test_layer_runs_without_the_opensim_package():
  """GPU/TPU machines and Colab may lack opensim: loading and FK must not import it."""
  code = '\n'.join([
      'import sys',
      'class Block:',
      '  def find_spec(self, name, path=None, target=None):',
      "    if name.split('.')[0] == 'opensim':",
      "      raise ImportError('opensim is blocked in this test')",
      'sys.meta_path.insert(0, Block())',
      'import numpy as np',
      'from banet_jax.skeleton import forward_kinematics, load_osim',
      'from banet_jax.skeleton.models import DEFAULT_MODEL_PATH',
      'skel = load_osim(DEFAULT_MODEL_PATH)',
      'out = forward_kinematics(skel, np.zeros((1, skel.num_coordinates)))',
      "assert out.markers.shape == (1, len(skel.marker_names), 3)",
      "assert 'opensim' not in sys.modules",
  ])
  subprocess.run([sys.executable, '-c', code], check=True, env={**os.environ, 'JAX_PLATFORMS': 'cpu'})

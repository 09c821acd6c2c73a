"""The JAX skeleton layer against the opensim package (4.6) as the oracle.

Every check runs on the project's model, on models built with the opensim API
that cover every supported joint and function type (tests/osim_test_models.py),
on the two published models the pose2sim wheel on PyPI ships
(banet_jax.capture.demo fetches it), and on every .osim in $BANET_EXTRA_OSIM_DIR.
"""

from __future__ import annotations

import functools
import os
import zlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from banet_jax.skeleton import apply_couplers, forward_kinematics, load_osim
import opensim_oracle as oracle
import osim_test_models as test_models



@pytest.fixture(scope='module', autouse=True)
def _compile_fast(fast_compile):  # a few poses per compiled program
  del fast_compile


@pytest.fixture(autouse=True)
def _float64():
  """These tests compare in float64; x64 is switched on for them only."""
  with jax.enable_x64(True):
    yield

FIELDS = ('body_positions', 'body_rotations', 'joint_centers', 'centers_of_mass', 'markers')
TOLERANCE = 1e-6  # metres for positions, unitless for rotation matrix entries
NUM_POSES = 6


@pytest.fixture(scope='session')
def built_models(tmp_path_factory):
  return test_models.build_all(str(tmp_path_factory.mktemp('osim_models')))


@pytest.fixture(scope='session')
def pose2sim_models():
  """The .osim files of the pose2sim wheel (OpenSim_Setup/), fetched from PyPI."""
  from banet_jax.capture import demo
  try:
    folder = demo.demo_capture_dir().parent / 'OpenSim_Setup'
  except demo.DemoFetchError as e:
    pytest.skip(f'the package registry cannot be reached: {e}')
  paths = sorted(str(p) for p in folder.glob('*.osim'))
  assert len(paths) == 2, f'pose2sim {demo.POSE2SIM_VERSION} ships two models, found {paths}'
  return paths


# The pose2sim models take ~2 min through every check below (62 coordinates, opensim's
# assembly with muscles), so the default suite runs one FK comparison of them
# (test_published_pose2sim_models_match_opensim) and the `slow` suite all of them.
@pytest.fixture(params=['project', 'joints', 'custom', 'couplers',
                        pytest.param('pose2sim', marks=pytest.mark.slow), 'extra'])
def model_path(request, built_models, project_model_path, extra_osim_paths):
  if request.param == 'project':
    return str(project_model_path)
  if request.param == 'pose2sim':
    return request.getfixturevalue('pose2sim_models')
  if request.param == 'extra':
    if not extra_osim_paths:
      pytest.skip('BANET_EXTRA_OSIM_DIR not set')
    return [str(p) for p in extra_osim_paths]
  return built_models[request.param]


def _paths(model_path):
  return model_path if isinstance(model_path, list) else [model_path]


@functools.lru_cache(maxsize=None)
def _case(path):
  """Skeleton, oracle metadata, and sampled inputs for one model file."""
  skel = load_osim(path)
  info = oracle.opensim_coordinate_info(path)
  # str hash() is salted per process; crc32 of the file name keeps samples reproducible.
  rng = np.random.default_rng(zlib.crc32(os.path.basename(path).encode()))
  q = test_models.sample_coordinates(info, NUM_POSES, rng)
  scales = test_models.sample_scales(path, NUM_POSES, rng, 0.8, 1.2)
  return skel, info, q, scales


@functools.lru_cache(maxsize=None)
def _jit_fk(path, enforce_couplers):
  skel = load_osim(path)
  return jax.jit(lambda q, s: forward_kinematics(skel, q, s, enforce_couplers=enforce_couplers))


def _oracle(path, skel, q, scales=None, enforce_couplers=False):
  return oracle.opensim_fk(
      path, q, scales, coordinate_names=skel.coordinate_names, body_names=skel.body_names,
      joint_names=skel.joint_names, marker_names=skel.marker_names,
      enforce_couplers=enforce_couplers)


def _max_errors(ours, ref):
  return {f: float(np.max(np.abs(np.asarray(getattr(ours, f)) - ref[f]), initial=0.0))
          for f in FIELDS}


def test_contact_forces_are_read_past(built_models):
  """OpenSim writes contact parameters under a C++-scoped element name; ET.parse refuses
  it, and a model with contact must still load (the force does not move anything)."""
  path = built_models['joints']
  with open(path) as f:
    assert '<HuntCrossleyForce::ContactParametersSet' in f.read()
  assert load_osim(path).num_bodies == 8


def test_published_pose2sim_models_match_opensim(pose2sim_models):
  for path in pose2sim_models:
    skel, info, q, scales = _case(path)
    assert skel.coordinate_names == tuple(info['names'])
    assert skel.marker_names == tuple(info['marker_names'])
    errors = _max_errors(_jit_fk(path, False)(q, scales), _oracle(path, skel, q, scales))
    assert max(errors.values()) < TOLERANCE, (path, errors)


def test_metadata_matches_opensim(model_path):
  for path in _paths(model_path):
    skel, info, _, _ = _case(path)
    assert skel.coordinate_names == tuple(info['names'])
    assert skel.body_names == tuple(info['body_names'])
    assert skel.joint_names == tuple(info['joint_names'])
    assert skel.marker_names == tuple(info['marker_names'])
    np.testing.assert_allclose(skel.coordinate_ranges[:, 0], info['range_min'])
    np.testing.assert_allclose(skel.coordinate_ranges[:, 1], info['range_max'])
    np.testing.assert_allclose(skel.default_coordinates, info['defaults'])
    np.testing.assert_array_equal(skel.locked, info['locked'])
    np.testing.assert_array_equal(skel.clamped, info['clamped'])
    np.testing.assert_array_equal(skel.dependent, info['coupler_dependent'])
    assert skel.coordinate_motion_types == tuple(t.lower() for t in info['motion_types'])


@pytest.mark.parametrize('scaled', [False, True], ids=['unscaled', 'scaled'])
def test_float64_matches_opensim(model_path, scaled):
  for path in _paths(model_path):
    skel, _, q, scales = _case(path)
    ref = _oracle(path, skel, q, scales if scaled else None)
    ours = _jit_fk(path, False)(q, scales if scaled else None)
    errors = _max_errors(ours, ref)
    print(f'{path} scaled={scaled} max |JAX - OpenSim|: {errors}')
    assert max(errors.values()) < TOLERANCE, errors


def test_enforced_couplers_match_opensim_assembly(model_path):
  for path in _paths(model_path):
    skel, _, q, scales = _case(path)
    if not skel.couplers:
      continue
    ref = _oracle(path, skel, q, scales, enforce_couplers=True)
    # OpenSim's assembler nudges the independent coordinates by ~1e-7, so start
    # from its result, scramble every dependent coordinate, and recompute them.
    q_in = ref['q'].copy()
    q_in[:, skel.dependent] = 0.123
    np.testing.assert_allclose(apply_couplers(skel, q_in, scales)[:, skel.dependent],
                               ref['q'][:, skel.dependent], atol=1e-8)
    errors = _max_errors(_jit_fk(path, True)(q_in, scales), ref)
    assert max(errors.values()) < TOLERANCE, errors


def test_float32_error_is_small(model_path, record_property):
  for path in _paths(model_path):
    skel, _, q, scales = _case(path)
    ref = _oracle(path, skel, q, scales)
    ours = _jit_fk(path, False)(q.astype(np.float32), scales.astype(np.float32))
    assert ours.markers.dtype == jnp.float32
    errors = _max_errors(ours, ref)
    print(f'{path} float32 max |JAX - OpenSim|: {errors}')
    record_property(f'float32_max_error_{skel.model_name}', max(errors.values()))
    assert max(errors.values()) < 5e-6, errors


def test_gradients_match_finite_differences(model_path):
  """Reverse-mode gradients of a random projection of every output, along random
  directions in (q, scales), against central finite differences."""
  for path in _paths(model_path):
    skel, _, q, scales = _case(path)
    rng = np.random.default_rng(0)
    shapes = jax.eval_shape(lambda a, b: forward_kinematics(skel, a, b), q[0], scales[0])
    weights = {f: rng.normal(size=getattr(shapes, f).shape) for f in FIELDS}

    def objective(q, s):
      out = forward_kinematics(skel, q, s)
      return sum(jnp.sum(getattr(out, f) * weights[f]) for f in FIELDS)

    value_and_grad = jax.jit(jax.value_and_grad(objective, (0, 1)))
    _, (grad_q, grad_s) = value_and_grad(q[0], scales[0])
    assert np.all(np.isfinite(grad_q)) and np.all(np.isfinite(grad_s))
    assert np.any(grad_q != 0) and np.any(grad_s != 0)
    eps = 1e-6
    for _ in range(4):
      dq, ds = rng.normal(size=q[0].shape), rng.normal(size=scales[0].shape)
      up, _ = value_and_grad(q[0] + eps * dq, scales[0] + eps * ds)
      down, _ = value_and_grad(q[0] - eps * dq, scales[0] - eps * ds)
      numeric = (up - down) / (2 * eps)
      analytic = np.sum(grad_q * dq) + np.sum(grad_s * ds)
      np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-7)


def test_nonuniform_scales_refused_where_opensim_refuses(built_models):
  path = built_models['couplers']
  skel = load_osim(path)
  bodies = test_models.uniform_scale_bodies(path)
  assert bodies, 'the couplers model has a translational coupler-dependent coordinate'
  scales = np.ones((1, skel.num_bodies, 3))
  scales[0, skel.body_index(bodies[0])] = (1.0, 1.1, 0.9)
  with pytest.raises(Exception, match='Non-uniform scaling of CoordinateCoupler'):
    _oracle(path, skel, skel.default_coordinates[None], scales)
  with pytest.raises(ValueError, match='needs uniform scale factors'):
    forward_kinematics(skel, skel.default_coordinates[None], scales)

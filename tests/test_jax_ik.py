"""Tests of banet_jax/skeleton/ik.py: the batched JAX IK against known poses and
against OpenSim's IK (opensim_ik.run_ik) on the same frames.

The default tests share one compiled solver: a subject model written by the ScaleTool
(scaled, markers placed; `mtp_angle_l` locked in its generic model; coordinates left
unclamped, so that poses beyond the ranges are recovered too) and 6 frames; a second
subject reuses it, and a clamped copy of the first compiles a second one.
"""

from __future__ import annotations

import dataclasses
import shutil
import xml.etree.ElementTree as ET

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from banet_jax.skeleton import apply_couplers, forward_kinematics, load_osim
from banet_jax.skeleton import ik as jax_ik
from odah_tfds.alignment import marker_setup, opensim_ik, opensim_scaling
from scaled_subjects import subject_scale_factors

LOCKED = ('mtp_angle_l', 0.15)  # coordinate locked in the test subject, and its value
NUM_FRAMES = 6  # every default test uses this many frames (one compilation)


@pytest.fixture(autouse=True)
def _x64_fast_compile():
  """float64, and XLA's cheap compile mode (the tests need correct, not fast, code)."""
  old = jax.config.read('jax_disable_most_optimizations')
  jax.config.update('jax_disable_most_optimizations', True)
  with jax.enable_x64(True):
    yield
  jax.config.update('jax_disable_most_optimizations', old)


def _scaled_subject(out, project_model_path, seed: int, name: str):
  """(scaled model path, its Skeleton, the factors): the project model with LOCKED
  locked, scaled by OpenSim's ScaleTool to a subject built with known per-body factors
  (its coordinates not clamped)."""
  tree = ET.parse(project_model_path)
  coordinate = tree.getroot().find(f".//Coordinate[@name='{LOCKED[0]}']")
  coordinate.find('default_value').text = repr(LOCKED[1])
  coordinate.find('locked').text = 'true'
  generic_path = out / 'generic_locked.osim'
  tree.write(generic_path, encoding='UTF-8', xml_declaration=True)
  generic = load_osim(generic_path)
  scales = subject_scale_factors(generic, seed)
  static = np.asarray(forward_kinematics(generic, generic.default_coordinates, scales).markers)
  result = opensim_scaling.scale_model(dict(zip(generic.marker_names, static)), generic_path,
                                       out, subject_mass=70.0, name=name,
                                       clamp_coordinates=False)
  skel = load_osim(result.scaled_model_path)
  assert skel.locked[skel.coordinate_index(LOCKED[0])] and not skel.clamped.any()
  return result.scaled_model_path, skel, scales


@pytest.fixture(scope='module')
def subject(tmp_path_factory, project_model_path):
  """(scaled model path, its Skeleton) of the subject every default test uses."""
  path, skel, _ = _scaled_subject(tmp_path_factory.mktemp('jax_ik_subject'),
                                  project_model_path, 3, 'jaxik')
  return path, skel


def _pose(skel, degrees: dict, metres: dict = None) -> np.ndarray:
  values = {k: np.radians(v) for k, v in degrees.items()}
  values.update(metres or {})
  return skel.coordinates_from_dict(values)


def _frames(skel) -> np.ndarray:
  """(NUM_FRAMES, C): 4 frames of a smooth motion, then 2 awkward poses."""
  t = np.arange(4)[:, None] / 60.0
  base = _pose(skel, {'hip_flexion_r': 30, 'knee_angle_r': 40, 'knee_angle_l': 15,
                      'arm_flex_r': 40, 'elbow_flex_r': 70, 'pro_sup_r': 80, 'pro_sup_l': 80,
                      'arm_add_l': -30, 'elbow_flex_l': 40, 'pelvis_rotation': 60},
               {'pelvis_tx': 0.3})
  rng = np.random.default_rng(0)
  smooth = base + 0.4 * np.sin(2 * np.pi * rng.uniform(0.5, 2, skel.num_coordinates) * t
                               + rng.uniform(0, 2 * np.pi, skel.num_coordinates)) * skel.rotational
  smooth[:, skel.coordinate_index('pelvis_tx')] += 1.2 * t[:, 0]
  squat = _pose(skel, {
      'pelvis_rotation': 170, 'pelvis_tilt': -20, 'hip_flexion_r': 115, 'hip_flexion_l': 110,
      'hip_adduction_l': -15, 'knee_angle_r': 115, 'knee_angle_l': 110, 'ankle_angle_r': 15,
      'ankle_angle_l': 18, 'lumbar_extension': -50, 'lumbar_rotation': 30, 'arm_flex_r': 160,
      'arm_add_r': -20, 'elbow_flex_r': 130, 'pro_sup_r': 150, 'wrist_flex_r': 60,
      'arm_add_l': -85, 'arm_rot_l': 40, 'elbow_flex_l': 90, 'pro_sup_l': 20},
      {'pelvis_ty': 0.6, 'pelvis_tz': -0.5})
  kick = _pose(skel, {
      'pelvis_list': 20, 'pelvis_rotation': -100, 'hip_flexion_r': 90, 'hip_adduction_r': -30,
      'hip_rotation_r': 35, 'knee_angle_r': 10, 'ankle_angle_r': -45, 'subtalar_angle_r': 25,
      'mtp_angle_r': 40, 'lumbar_bending': 30, 'arm_flex_l': -50, 'arm_rot_l': -80,
      'elbow_flex_l': 20, 'pro_sup_l': 140, 'wrist_dev_l': 25, 'wrist_flex_l': -60},
      {'pelvis_tx': -2.0, 'pelvis_ty': 1.1})
  q = np.concatenate([smooth, squat[None], kick[None]])
  q[:, skel.coordinate_index(LOCKED[0])] = LOCKED[1]
  return np.asarray(apply_couplers(skel, q))


def _markers(skel, q) -> np.ndarray:
  return np.array(forward_kinematics(skel, q).markers, np.float64)  # a writable copy


def _wrapped(a):
  return np.angle(np.exp(1j * np.asarray(a)))


def test_marker_jacobian_matches_finite_differences(subject, project_model_path):
  """The analytic Jacobian against central differences of the FK, on the ScaleTool's
  model (MultiplierFunction-scaled knee translations) and on the project model with
  non-uniform per-body scales (OpenSim's scaling of the translation functions)."""
  _, scaled = subject
  generic = load_osim(project_model_path)
  rng = np.random.default_rng(1)
  for skel, scales in ((scaled, None), (generic, rng.uniform(0.8, 1.2, (2, 22, 3)))):
    q = np.asarray(apply_couplers(skel, _frames(skel)[[1, 4]]))
    jac = np.asarray(jax_ik.marker_jacobian(skel, q, scales))  # (2, M, 3, C)
    step = 1e-6
    eye = np.eye(skel.num_coordinates) * step
    probes = np.concatenate([q[:, None] + eye, q[:, None] - eye], axis=1)  # (2, 2C, C)
    probe_scales = None if scales is None else np.repeat(scales[:, None], probes.shape[1], 1)
    fk = np.asarray(forward_kinematics(skel, probes, probe_scales).markers)
    c = skel.num_coordinates
    numeric = np.moveaxis((fk[:, :c] - fk[:, c:]) / (2 * step), 1, -1)
    np.testing.assert_allclose(jac, numeric, atol=2e-8)
  free = jax_ik._free_coordinates(scaled)  # pylint: disable=protected-access
  dq = np.asarray(jax_ik.coordinate_jacobian(scaled, q[:1], free))[0]
  knee = list(free).index(scaled.coordinate_index('knee_angle_r'))
  assert dq[scaled.coordinate_index('knee_angle_r_beta'), knee] == pytest.approx(1.0)
  assert not dq[scaled.coordinate_index(LOCKED[0])].any()


def test_recovers_known_coordinates(subject):
  _, skel = subject
  q = _frames(skel)
  weights = marker_setup.ik_weight_array(skel.marker_names)
  solution = jax_ik.solve_ik(skel, _markers(skel, q), weights)
  coords, errors = solution  # unpacks like a pair
  coords, errors = np.asarray(coords), np.asarray(errors)
  assert coords.shape == (NUM_FRAMES, skel.num_coordinates) and coords.dtype == np.float64
  assert errors.shape == (NUM_FRAMES, len(skel.marker_names))
  np.testing.assert_allclose(_wrapped(coords - q), 0.0, atol=1e-7)
  assert errors.max() < 1e-8 and np.asarray(solution.rms).max() < 1e-8
  assert (coords[:, skel.coordinate_index(LOCKED[0])] == LOCKED[1]).all()
  for knee in ('knee_angle_r', 'knee_angle_l'):
    np.testing.assert_array_equal(coords[:, skel.coordinate_index(knee + '_beta')],
                                  coords[:, skel.coordinate_index(knee)])
  # Started at the answer, it stays there (and reports it took few iterations).
  again = jax_ik.solve_ik(skel, _markers(skel, q), weights, init=q)
  np.testing.assert_allclose(np.asarray(again.coordinates), coords, atol=1e-9)
  assert int(again.iterations) < int(solution.iterations)


def test_matches_opensim_ik_with_noisy_markers(subject):
  """5 mm marker noise: the same weighted least-squares optimum as OpenSim's IK.

  OpenSim tracks the smooth frames in order. Started from the default pose, it ends in
  a local minimum for the backward-facing squat (cost ~50x the optimum), so it reaches
  each awkward pose the way it would in a motion: tracking a 9-frame ramp from the
  default pose, then solving the pose from there (accuracy 1e-8: at 1e-7 it stops up to
  ~0.5 deg short in these poses). The JAX solve has no such help."""
  path, skel = subject
  q = _frames(skel)
  rng = np.random.default_rng(2)
  markers = _markers(skel, q) + rng.normal(0.0, 0.005, (NUM_FRAMES, len(skel.marker_names), 3))
  weights = marker_setup.ik_weight_array(skel.marker_names)
  ours = jax_ik.solve_ik(skel, markers, weights)
  runs = [opensim_ik.run_ik(path, skel.marker_names, markers[:4], fps=60.0)]
  for k in (4, 5):
    ramp = np.linspace(skel.default_coordinates, q[k], 10)[:-1]
    ramp[:, skel.coordinate_index(LOCKED[0])] = LOCKED[1]
    approach = opensim_ik.run_ik(path, skel.marker_names,
                                 _markers(skel, np.asarray(apply_couplers(skel, ramp))),
                                 fps=60.0, accuracy=1e-6)
    runs.append(opensim_ik.run_ik(path, skel.marker_names, markers[k:k + 1], fps=60.0,
                                  accuracy=1e-8, init=approach.coordinates[-1]))
  reference = np.concatenate([r.coordinates for r in runs])
  ref_rms = np.concatenate([r.rms for r in runs])
  ref_errors = np.concatenate([r.marker_errors for r in runs])
  coords = np.asarray(ours.coordinates)
  rot, trans = skel.rotational, skel.translational
  d = np.degrees(np.abs(_wrapped(coords - reference)))
  assert np.degrees(np.abs(_wrapped(coords - reference)[:, rot])).max() < 0.5
  assert np.abs(coords - reference)[:, trans].max() < 1e-3
  assert np.abs(np.asarray(ours.rms) - ref_rms).max() < 1e-3
  # At least as good an optimum as OpenSim's (which stops at its accuracy).
  ref_cost = (weights * ref_errors ** 2).sum(-1)
  assert (np.asarray(ours.cost) <= ref_cost * (1 + 1e-6)).all()
  np.testing.assert_allclose(np.asarray(ours.cost), (weights * np.asarray(
      ours.marker_errors) ** 2).sum(-1), rtol=1e-10)


def test_missing_markers_and_bad_input(subject):
  _, skel = subject
  q = _frames(skel)
  markers = _markers(skel, q)
  for frame, name in ((0, 'RTOE'), (4, 'LMCP2'), (4, 'RASI'), (5, 'C7')):
    markers[frame, skel.marker_index(name)] = np.nan
  weights = marker_setup.ik_weight_array(skel.marker_names)
  coords, errors = jax_ik.solve_ik(skel, markers, weights)
  errors = np.asarray(errors)
  assert np.isnan(errors[4, skel.marker_index('RASI')]) and np.isnan(errors[0, skel.marker_index(
      'RTOE')])
  assert np.nanmax(errors) < 1e-8
  np.testing.assert_allclose(_wrapped(np.asarray(coords) - q), 0.0, atol=1e-6)
  with pytest.raises(ValueError, match=r'\(T, 63, 3\)'):
    jax_ik.solve_ik(skel, markers[:, :10], weights)
  with pytest.raises(ValueError, match='marker_weights'):
    jax_ik.solve_ik(skel, markers, weights[:5])
  with pytest.raises(ValueError, match='init'):
    jax_ik.solve_ik(skel, markers, weights, init=np.zeros((2, 39)))
  with pytest.raises(KeyError, match='NOPE'):
    jax_ik.solve_ik(skel, markers[:, :1], weights[:1], marker_names=['NOPE'])


def test_one_compiled_program_serves_every_subject(subject, tmp_path, project_model_path):
  """A second subject model (other scale factors, markers placed anew) runs the first
  one's compiled program, its numbers passed as arguments, and is solved exactly."""
  _, skel = subject
  _, other, other_scales = _scaled_subject(tmp_path, project_model_path, 11, 'other')
  weights = marker_setup.ik_weight_array(skel.marker_names)
  jax_ik.solve_ik(skel, _markers(skel, _frames(skel)), weights)  # compiled (or cached)
  compiled = jax_ik._solve._cache_size()  # pylint: disable=protected-access
  q = _frames(other)
  solution = jax_ik.solve_ik(other, _markers(other, q), weights)
  np.testing.assert_allclose(_wrapped(np.asarray(solution.coordinates) - q), 0.0, atol=1e-7)
  assert np.asarray(solution.rms).max() < 1e-8
  assert jax_ik._solve._cache_size() == compiled  # pylint: disable=protected-access
  template, ratios = jax_ik._template_for(other)  # pylint: disable=protected-access
  first_template, first_ratios = jax_ik._template_for(skel)  # pylint: disable=protected-access
  assert template is first_template
  # The two subjects' ratios (to the shared, normalised template) differ by their scale
  # factors on every axis that carries an offset.
  first_scales = np.repeat(np.random.default_rng(3).uniform(0.9, 1.1, (22, 1)), 3, axis=1)
  femur = other.body_index('femur_r')
  assert ratios[femur, 1] / first_ratios[femur, 1] == pytest.approx(
      other_scales[femur, 1] / first_scales[femur, 1], rel=1e-4)
  # Offsets that no per-body factor explains: a template (a program) of its own.
  joints = list(other.joints)
  joints[1] = dataclasses.replace(joints[1], parent_offset=joints[1].parent_offset * 1.1)
  odd = other.derive(joints=tuple(joints))
  assert jax_ik._body_ratios(template, odd) is None  # pylint: disable=protected-access
  assert jax_ik._template_for(odd)[0] is not template  # pylint: disable=protected-access


def test_clamped_model_stays_in_range_like_opensim(subject, tmp_path):
  """On a model with clamped coordinates (what `scale_model` writes by default) both
  solvers hold every joint angle inside its range and agree, also where markers pull
  a coordinate beyond it (ankle_angle_l > 20 deg in these frames)."""
  path, skel = subject
  clamped_path = tmp_path / 'clamped.osim'
  shutil.copy(path, clamped_path)
  names = opensim_scaling.clamp_model(clamped_path)
  assert 'ankle_angle_l' in names and 'pelvis_rotation' not in names
  clamped = load_osim(clamped_path)
  q = _frames(skel)[:4]
  lo, hi = clamped.coordinate_ranges.T
  ankle = clamped.coordinate_index('ankle_angle_l')
  assert (q[:, ankle] > hi[ankle]).all()
  rng = np.random.default_rng(5)
  markers = _markers(skel, q) + rng.normal(0.0, 0.003, (4, len(skel.marker_names), 3))
  weights = marker_setup.ik_weight_array(skel.marker_names)
  ours = jax_ik.solve_ik(clamped, markers, weights)
  coords = np.asarray(ours.coordinates)
  inside = (coords >= lo - 1e-12) & (coords <= hi + 1e-12)
  assert inside[:, clamped.clamped].all()
  assert (coords[:, ankle] == hi[ankle]).all()  # held on its bound
  reference = opensim_ik.run_ik(clamped_path, skel.marker_names, markers, fps=60.0,
                                accuracy=1e-8)
  assert (reference.coordinates[:, clamped.clamped] >= lo[clamped.clamped] - 1e-9).all()
  d = np.abs(_wrapped(coords - reference.coordinates))
  assert np.degrees(d[:, clamped.rotational]).max() < 0.5
  assert d[:, clamped.translational].max() < 1e-3
  assert np.abs(np.asarray(ours.rms) - reference.rms).max() < 1e-3
  ref_cost = (weights * reference.marker_errors ** 2).sum(-1)
  assert (np.asarray(ours.cost) <= ref_cost * (1 + 1e-6)).all()


# ---- heavier checks (pytest --runslow) -------------------------------------------------


@pytest.mark.slow
def test_variants_follow_opensim_on_a_long_trajectory(subject):
  """sequential, keyframes, float32 and the default on 60 noisy frames of smooth motion.

  OpenSim at accuracy 1e-8: at its default 1e-7 it stops up to 0.65 deg from the optimum
  here (mtp, one soft marker), every JAX variant is within 0.001 deg of it."""
  path, skel = subject
  t = np.arange(60)[:, None] / 60.0
  rng = np.random.default_rng(5)
  q = skel.default_coordinates + skel.rotational * (
      0.5 * np.sin(2 * np.pi * rng.uniform(0.3, 1.2, skel.num_coordinates) * t
                   + rng.uniform(0, 2 * np.pi, skel.num_coordinates)))
  for name in ('knee_angle_r', 'knee_angle_l', 'elbow_flex_r', 'elbow_flex_l', 'pro_sup_r',
               'pro_sup_l'):
    i = skel.coordinate_index(name)
    q[:, i] = 0.9 + 0.8 * np.sin(2 * np.pi * 0.7 * t[:, 0] + i)
  q[:, skel.coordinate_index(LOCKED[0])] = LOCKED[1]
  q = np.asarray(apply_couplers(skel, q))
  markers = _markers(skel, q) + rng.normal(0, 0.005, (60, len(skel.marker_names), 3))
  weights = marker_setup.ik_weight_array(skel.marker_names)
  reference = opensim_ik.run_ik(path, skel.marker_names, markers, fps=60.0, accuracy=1e-8)
  rot = skel.rotational
  for kwargs, dtype, tol_deg in (({'sequential': True}, np.float64, 0.5),
                                 ({'keyframe_stride': 8}, np.float64, 0.5),
                                 ({}, np.float32, 0.5), ({}, np.float64, 0.5)):
    solution = jax_ik.solve_ik(skel, markers.astype(dtype), weights, **kwargs)
    coords = np.asarray(solution.coordinates, np.float64)
    worst = np.degrees(np.abs(_wrapped(coords - reference.coordinates)[:, rot])).max()
    print(kwargs, dtype.__name__, 'max |jax - opensim| deg', worst, 'iterations',
          int(solution.iterations))
    assert worst < tol_deg
    assert np.abs(np.asarray(solution.rms, np.float64) - reference.rms).max() < 1e-3


@pytest.mark.slow
def test_uniformly_random_poses_all_converge(project_model_path):
  """Poses drawn uniformly over every coordinate's full range, any heading: the batched
  solve (segment registration + coarse-to-fine) reaches zero residual on all."""
  skel = load_osim(project_model_path)
  rng = np.random.default_rng(10)
  lo = np.maximum(skel.coordinate_ranges[:, 0], -np.pi)
  hi = np.minimum(skel.coordinate_ranges[:, 1], np.pi)
  q = rng.uniform(lo, hi, (128, skel.num_coordinates))
  q[:, skel.translational] = rng.uniform([-1, 0.6, -1], [1, 1.2, 1], (128, 3))
  q = np.asarray(apply_couplers(skel, q))
  markers = _markers(skel, q)
  solution = jax_ik.solve_ik(skel, markers, marker_setup.ik_weight_array(skel.marker_names))
  assert np.asarray(solution.rms).max() < 1e-6
  # The same pose (zero residual) also means the same coordinates, up to 2 pi.
  np.testing.assert_allclose(_wrapped(np.asarray(solution.coordinates) - q), 0.0, atol=1e-5)


@pytest.mark.slow
def test_marker_subset_and_scales_argument(project_model_path):
  """A subset of the markers in another order, on the generic model with a scales
  argument (instead of a scaled .osim)."""
  skel = load_osim(project_model_path)
  rng = np.random.default_rng(4)
  scales = rng.uniform(0.9, 1.1, (skel.num_bodies, 3))
  scales[skel.body_index('femur_r')] = scales[skel.body_index('femur_r'), 0]
  q = np.asarray(apply_couplers(skel, _frames(skel), None))
  names = [n for n in skel.marker_names if not n.startswith(('RHEAD', 'LHEAD', 'FHEAD'))][::-1]
  index = [skel.marker_index(n) for n in names]
  markers = np.asarray(forward_kinematics(skel, q, scales).markers)[:, index]
  solution = jax_ik.solve_ik(skel, markers, marker_setup.ik_weight_array(names), scales=scales,
                             marker_names=names)
  assert np.asarray(solution.rms).max() < 1e-8
  np.testing.assert_allclose(_wrapped(np.asarray(solution.coordinates) - q), 0.0, atol=1e-6)
  assert jnp.asarray(solution.marker_errors).shape == (NUM_FRAMES, len(names))


@pytest.mark.slow
def test_benchmark_smoke():
  """benchmarks/odah_labels.py end to end on a tiny configuration."""
  from benchmarks import odah_labels  # pylint: disable=g-import-not-at-top
  report = odah_labels.run(num_frames=12, opensim_frames=3, accuracies=(1e-5,),
                           reference_accuracy=1e-5, batches=(6,), repeats=1,
                           sequential=True, subjects=1, keyframe_stride=4, verbose=False)
  for row in ('opensim IK | accuracy 1e-05', 'jax batched | float64, T=6',
              'jax keyframes every 4', 'jax sequential'):
    assert row in report, report
  assert 'scaling' in report and 'speed-up vs OpenSim 1e-05' in report

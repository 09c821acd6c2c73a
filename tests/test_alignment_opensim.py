"""Tests of the OpenSim reference path of the ODAH alignment: marker set-up, ScaleTool
scaling (odah_tfds/alignment/opensim_scaling.py) and OpenSim IK (opensim_ik.py).

Virtual markers come from the JAX skeleton layer's forward kinematics (which matches
OpenSim to 1e-15, see test_skeleton_vs_opensim.py) of known coordinates and scales.
"""

from __future__ import annotations

import jax
import numpy as np
import opensim as osim
import pytest

from banet_jax import opensim_io
from banet_jax.skeleton import apply_couplers, forward_kinematics, load_osim
from odah_tfds.alignment import marker_setup, opensim_ik, opensim_scaling


@pytest.fixture(autouse=True)
def _x64():
  with jax.enable_x64(True):
    yield


@pytest.fixture(scope='module')
def skel(project_model_path):
  return load_osim(project_model_path)


def _fk_markers(skel, q, scales=None) -> np.ndarray:
  return np.array(forward_kinematics(skel, np.asarray(q, np.float64), scales).markers,
                  np.float64)  # a writable copy


def _wrapped(a):
  return np.angle(np.exp(1j * np.asarray(a)))


# ---- marker set-up ------------------------------------------------------------------


def test_every_project_marker_has_a_weight(skel):
  weights = marker_setup.ik_weights(skel.marker_names)
  assert set(weights) == set(skel.marker_names) == set(marker_setup.MARKER_CLASSES)
  assert set(weights.values()) == {20.0, 10.0, 1.0}
  assert weights['RHJC'] == 10.0 and weights['RASI'] == 20.0 and weights['HEAD_TOP'] == 1.0
  array = marker_setup.ik_weight_array(skel.marker_names)
  np.testing.assert_array_equal(array, [weights[n] for n in skel.marker_names])
  with pytest.raises(KeyError, match='NOPE'):
    marker_setup.ik_weights(['NOPE'])
  assert marker_setup.ik_weights(['NOPE'], default=2.0) == {'NOPE': 2.0}
  with pytest.raises(ValueError, match='>= 0'):
    marker_setup.ik_weight_array(['A'], [-1.0])


@pytest.mark.parametrize('symmetric', [False, True])
def test_measurement_set_scales_every_body_axis_once(skel, symmetric):
  measurements = marker_setup.scaling_measurements(symmetric=symmetric)
  marker_setup.check_measurements(measurements, skel.body_names, skel.marker_names)
  names = [m.name for m in measurements]
  assert len(names) == len(set(names))
  with pytest.raises(ValueError, match='no measurement scales'):
    marker_setup.check_measurements(measurements[1:], skel.body_names, skel.marker_names)
  with pytest.raises(ValueError, match='scaled by both'):
    marker_setup.check_measurements(measurements + measurements[:1], skel.body_names,
                                    skel.marker_names)


# ---- scaling -------------------------------------------------------------------------

# Bodies that share one measurement (so one factor) in the default measurement set.
_GROUPS = (('femur', 'patella'), ('talus', 'calcn', 'toes'), ('ulna', 'radius'))


def _group_scales(skel, rng) -> np.ndarray:
  """Per-body uniform factors, different for every body and side, equal within the
  groups that share a measurement."""
  scales = np.repeat(rng.uniform(0.85, 1.15, (skel.num_bodies, 1)), 3, axis=1)
  for group in _GROUPS:
    for side in ('r', 'l'):
      first = skel.body_index(f'{group[0]}_{side}')
      for other in group[1:]:
        scales[skel.body_index(f'{other}_{side}')] = scales[first]
  # The trunk height (hip to shoulder centres) scales the pelvis and torso together.
  scales[skel.body_index('torso')] = scales[skel.body_index('pelvis')]
  return scales


def test_scaling_recovers_known_factors(tmp_path, skel, project_model_path):
  scales = _group_scales(skel, np.random.default_rng(7))
  pose = skel.coordinates_from_dict({'pelvis_tx': 0.4, 'pelvis_tz': -0.2,
                                     'pelvis_rotation': 0.3})
  static = dict(zip(skel.marker_names, _fk_markers(skel, pose, scales)))
  result = opensim_scaling.scale_model(static, project_model_path, tmp_path, subject_mass=68.0,
                                       subject_height=1.70, name='S01')
  # Factors: the ScaleSet file holds 6 significant digits.
  np.testing.assert_allclose(result.scale_factors, scales, rtol=1e-5)
  assert result.body_names == skel.body_names
  pairs = {m.name: len(m.marker_pairs) for m in marker_setup.scaling_measurements()}
  for name, value in result.measurements.items():
    if pairs[name] == 1:  # else the factor is the mean of the per-pair ratios
      assert value.factor == pytest.approx(value.subject_distance / value.model_distance,
                                           rel=1e-9), name
  # The scaled model fits the static trial exactly, in the given pose.
  assert result.marker_residual_rms < 1e-5 and result.marker_residual_max < 3e-5
  np.testing.assert_allclose(result.static_coordinates, pose, atol=1e-4)
  scaled = load_osim(result.scaled_model_path)
  np.testing.assert_allclose(_fk_markers(scaled, result.static_coordinates),
                             _fk_markers(skel, pose, scales), atol=1e-5)
  # Outputs a biomechanist expects, readable by OpenSim; the mass is the subject's.
  model = osim.Model(result.scaled_model_path)
  state = model.initSystem()
  assert model.getTotalMass(state) == pytest.approx(68.0, rel=1e-9)
  tool = osim.ScaleTool(result.setup_path)
  assert tool.getSubjectMass() == pytest.approx(68.0)
  assert tool.getMarkerPlacer().getApply() and tool.getModelScaler().getApply()
  assert tool.getModelScaler().getMeasurementSet().getSize() == len(
      marker_setup.scaling_measurements())
  for path in (result.static_trc_path, result.scale_set_path, result.scaled_only_model_path):
    assert (tmp_path / path.split('/')[-1]).is_file()


def test_scaling_matches_the_measurement_definitions(tmp_path, skel, project_model_path):
  """Independent factors per measurement (so per body axis): the tool applies exactly
  what the measurement set defines; axis-aligned marker pairs recover the factor, pairs
  that mix axes recover a weighted mean of the factors (see the README table)."""
  rng = np.random.default_rng(11)
  measurements = marker_setup.scaling_measurements()
  known = {m.name: rng.uniform(0.9, 1.1) for m in measurements}
  scales = marker_setup.body_scale_factors(measurements, known, skel.body_names)
  frames = np.stack([_fk_markers(skel, skel.default_coordinates, scales)] * 3)
  result = opensim_scaling.scale_model((skel.marker_names, frames), None, tmp_path,
                                       subject_mass=80.0, name='S02')
  factors = {k: v.factor for k, v in result.measurements.items()}
  predicted = marker_setup.body_scale_factors(measurements, factors, skel.body_names)
  np.testing.assert_allclose(result.scale_factors, predicted, rtol=1e-5)
  generic = dict(zip(skel.marker_names, _fk_markers(skel, skel.default_coordinates)))
  for meas in measurements:
    body, axes = meas.body_axes[0]
    axis = 'XYZ'.index(axes[0])
    share = min((generic[a] - generic[b])[axis] ** 2 / np.sum((generic[a] - generic[b]) ** 2)
                for a, b in meas.marker_pairs)
    error = abs(factors[meas.name] / known[meas.name] - 1)
    if share > 0.96:  # axis-aligned pairs
      assert error < 0.01, (meas.name, error)
    else:
      assert error < 0.05, (meas.name, error)


def test_marker_placement_moves_offset_markers(tmp_path, skel, project_model_path):
  """A subject whose markers sit off the model's (2 cm on RGTR, 1 cm on RHEAD; neither
  is in a measurement):
  with placement the model markers move onto them (residual in the result = the
  offset), without placement they stay."""
  static = dict(zip(skel.marker_names, _fk_markers(skel, skel.default_coordinates)))
  static['RGTR'] = static['RGTR'] + np.array([0.0, 0.0, 0.02])
  static['RHEAD'] = static['RHEAD'] + np.array([0.0, 0.01, 0.0])
  placed = opensim_scaling.scale_model(static, project_model_path, tmp_path / 'placed',
                                       subject_mass=75.0, name='P')
  kept = opensim_scaling.scale_model(static, project_model_path, tmp_path / 'kept',
                                     subject_mass=75.0, name='K', marker_placement=False)
  assert kept.scaled_model_path == kept.scaled_only_model_path
  for result in (placed, kept):
    assert result.marker_residuals['RGTR'] == pytest.approx(0.02, abs=2e-3)
    assert result.marker_residuals['RHEAD'] == pytest.approx(0.01, abs=2e-3)
    assert result.marker_residual_max == pytest.approx(0.02, abs=2e-3)
  for result, expect_moved in ((placed, True), (kept, False)):
    model = load_osim(result.scaled_model_path)
    fk = dict(zip(model.marker_names, _fk_markers(model, result.static_coordinates)))
    gap = np.linalg.norm(fk['RGTR'] - static['RGTR'])
    assert (gap < 1e-4) if expect_moved else (gap > 0.015), (result.scaled_model_path, gap)


def test_known_static_pose_puts_the_joint_centres_on_the_subjects(tmp_path, skel,
                                                                   project_model_path):
  """With `static_coordinates`, the skeleton sits where its joint centres meet the
  trial's, however the skin landmarks sit around them: here every landmark is 3 cm
  anterior of the model's (a pure shift leaves every measurement, so the factors, at
  1), and the static pose keeps the true pelvis position, not one 2-3 cm forward. The
  subject model comes out with its joint angles clamped (pelvis_rotation free)."""
  pose = skel.coordinates_from_dict({'pelvis_tx': 0.2, 'pelvis_tz': -0.1})
  static = dict(zip(skel.marker_names, _fk_markers(skel, pose)))
  for name in static:
    if marker_setup.marker_class(name) != 'joint':
      static[name] = static[name] + np.array([0.03, 0.0, 0.0])
  result = opensim_scaling.scale_model(static, project_model_path, tmp_path, subject_mass=70.0,
                                       name='J', static_coordinates=skel.default_coordinates)
  np.testing.assert_allclose(result.scale_factors, 1.0, atol=1e-5)
  np.testing.assert_allclose(result.static_coordinates, pose, atol=1e-4)
  model = load_osim(result.scaled_model_path)
  fk = dict(zip(model.marker_names, _fk_markers(model, result.static_coordinates)))
  assert np.linalg.norm(fk['RASI'] - static['RASI']) < 1e-4  # placed onto the trial
  assert model.clamped[model.coordinate_index('knee_angle_r')]
  assert not model.clamped[[model.coordinate_index(n) for n in (
      'pelvis_rotation', 'pelvis_tx', 'pelvis_ty', 'pelvis_tz')]].any()
  assert model.clamped[~model.translational].sum() == model.num_coordinates - 4


def test_scaling_refuses_bad_input(tmp_path, skel):
  static = dict(zip(skel.marker_names, _fk_markers(skel, skel.default_coordinates)))
  with pytest.raises(ValueError, match='subject_mass'):
    opensim_scaling.scale_model(static, None, tmp_path, subject_mass=-1.0)
  partial = {k: v for k, v in static.items() if k != 'RKJC'}
  with pytest.raises(ValueError, match='RKJC'):
    opensim_scaling.scale_model(partial, None, tmp_path, subject_mass=70.0)
  bad = dict(static)
  bad['RASI'] = np.array([np.nan, 0.0, 0.0])
  with pytest.raises(ValueError, match='RASI'):
    opensim_scaling.scale_model(bad, None, tmp_path, subject_mass=70.0)
  with pytest.raises(TypeError, match='static_markers'):
    opensim_scaling.scale_model(np.zeros((63, 3)), None, tmp_path, subject_mass=70.0)


# ---- inverse kinematics ----------------------------------------------------------------


def _smooth_trajectory(skel, num_frames, seed):
  """A smooth motion inside the coordinate ranges (couplers applied), 60 fps."""
  rng = np.random.default_rng(seed)
  t = np.arange(num_frames) / 60.0
  lo, hi = skel.coordinate_ranges[:, 0], skel.coordinate_ranges[:, 1]
  centre = np.clip(skel.default_coordinates + rng.uniform(-0.3, 0.3, skel.num_coordinates),
                   lo + 0.35, hi - 0.35)
  q = centre + 0.3 * np.sin(2 * np.pi * rng.uniform(0.5, 2.0, skel.num_coordinates) * t[:, None]
                            + rng.uniform(0, 2 * np.pi, skel.num_coordinates))
  q[:, skel.translational] = skel.default_coordinates[skel.translational] + np.outer(
      t, [0.8, 0.05, 0.3])
  return np.asarray(apply_couplers(skel, q))


def test_opensim_ik_recovers_known_coordinates(tmp_path, skel, project_model_path):
  q = _smooth_trajectory(skel, 8, seed=0)
  markers = _fk_markers(skel, q)
  result = opensim_ik.run_ik(project_model_path, skel.marker_names, markers, fps=60.0,
                             out_dir=tmp_path, name='walk')
  assert result.coordinate_names == skel.coordinate_names
  rot, trans = skel.rotational, skel.translational
  assert np.degrees(np.abs(_wrapped(result.coordinates - q)[:, rot])).max() < 0.1
  assert np.abs(result.coordinates - q)[:, trans].max() < 1e-4
  assert result.rms.max() < 1e-4 and result.max.max() < 3e-4
  assert result.marker_errors.shape == (8, len(skel.marker_names))
  for knee in ('knee_angle_r', 'knee_angle_l'):  # the coupler is enforced exactly
    np.testing.assert_allclose(result.coordinates[:, skel.coordinate_index(knee + '_beta')],
                               result.coordinates[:, skel.coordinate_index(knee)], atol=1e-9)
  # Files: the .mot (degrees) reads back, the error .sto holds the per-marker errors.
  times, names, values = opensim_io.read_mot(result.files['mot'], rotational=skel)
  assert names == list(skel.coordinate_names)
  np.testing.assert_allclose(values, result.coordinates, atol=1e-9)
  np.testing.assert_allclose(times, np.arange(8) / 60.0, atol=1e-12)
  _, err_names, err_values = opensim_io.read_mot(result.files['errors'])
  np.testing.assert_allclose(err_values[:, err_names.index('RKJC')],
                             result.marker_errors[:, skel.marker_index('RKJC')], atol=1e-12)
  # The IK set-up re-runs in OpenSim's own InverseKinematicsTool to the same answer.
  tool = osim.InverseKinematicsTool(result.files['setup'])
  tool.set_results_directory(str(tmp_path / 'rerun'))
  tool.set_output_motion_file(str(tmp_path / 'rerun.mot'))
  tool.run()
  _, rerun_names, rerun = opensim_io.read_mot(tmp_path / 'rerun.mot', rotational=skel)
  order = [rerun_names.index(n) for n in skel.coordinate_names]
  assert np.degrees(np.abs(_wrapped(rerun[:, order] - result.coordinates))).max() < 0.05


def test_opensim_ik_missing_and_unknown_markers(skel, project_model_path):
  q = _smooth_trajectory(skel, 3, seed=1)
  markers = _fk_markers(skel, q)
  markers[1, skel.marker_index('RTOE')] = np.nan
  names = list(skel.marker_names) + ['EXTRA']
  positions = np.concatenate([markers, np.ones((3, 1, 3))], axis=1)
  result = opensim_ik.run_ik(project_model_path, names, positions, fps=100.0)
  assert np.isnan(result.marker_errors[:, -1]).all()
  assert np.isnan(result.marker_errors[1, skel.marker_index('RTOE')])
  assert np.isfinite(result.marker_errors[0, :-1]).all()
  assert result.rms.max() < 1e-4
  np.testing.assert_allclose(result.times, np.arange(3) / 100.0)
  with pytest.raises(ValueError, match=r'\(T, 64, 3\)'):
    opensim_ik.run_ik(project_model_path, names, markers, fps=60.0)

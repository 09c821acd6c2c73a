"""Tests of banet_jax/opensim_io.py: .trc and .mot files through OpenSim's own tables."""

from __future__ import annotations

import numpy as np
import opensim as osim
import pytest

from banet_jax import opensim_io
from banet_jax.skeleton import load_osim

import opensim_oracle as oracle


@pytest.fixture(scope='module')
def skel(project_model_path):
  return load_osim(project_model_path)


def _random_pose_batch(skel, num, seed):
  """Poses inside the ranges, knee_beta = knee (the coupler), pelvis near standing."""
  rng = np.random.default_rng(seed)
  lo, hi = skel.coordinate_ranges[:, 0], skel.coordinate_ranges[:, 1]
  q = rng.uniform(np.maximum(lo, -1.5), np.minimum(hi, 1.5), (num, skel.num_coordinates))
  q[:, skel.translational] = skel.default_coordinates[skel.translational] + rng.uniform(
      -0.2, 0.2, (num, int(skel.translational.sum())))
  for knee in ('knee_angle_r', 'knee_angle_l'):
    q[:, skel.coordinate_index(knee + '_beta')] = q[:, skel.coordinate_index(knee)]
  return q


@pytest.mark.parametrize('units', ['m', 'mm'])
def test_trc_round_trip_and_units(tmp_path, units):
  rng = np.random.default_rng(0)
  times = opensim_io.uniform_times(7, 60.0)
  names = ['RASI', 'LASI', 'C7']
  positions = rng.uniform(-1.0, 2.0, (7, 3, 3))
  path = opensim_io.write_trc(tmp_path / f'a_{units}.trc', times, names, positions, units=units)
  # OpenSim's own reader sees the unit and the values in that unit.
  table = osim.TimeSeriesTableVec3(path)
  assert table.getTableMetaDataString('Units') == units
  assert list(table.getColumnLabels()) == names
  first = table.getRowAtIndex(0)
  scale = 1000.0 if units == 'mm' else 1.0
  np.testing.assert_allclose([first[0][k] for k in range(3)], positions[0, 0] * scale, rtol=1e-12)
  assert float(table.getTableMetaDataString('DataRate')) == pytest.approx(60.0)
  # Our reader returns metres.
  t2, n2, p2 = opensim_io.read_trc(path)
  assert n2 == names
  np.testing.assert_allclose(t2, times, atol=1e-12)
  np.testing.assert_allclose(p2, positions, rtol=1e-12, atol=1e-15)


def test_trc_missing_markers_stay_nan(tmp_path):
  positions = np.ones((3, 2, 3))
  positions[1, 0] = np.nan
  path = opensim_io.write_trc(tmp_path / 'gap.trc', opensim_io.uniform_times(3, 30), ['A', 'B'],
                              positions)
  _, _, back = opensim_io.read_trc(path)
  assert np.isnan(back[1, 0]).all() and np.isfinite(back[[0, 2]]).all()


def test_mot_degrees_only_for_rotational_columns(tmp_path, skel):
  q = _random_pose_batch(skel, 4, seed=1)
  times = opensim_io.uniform_times(4, 60.0)
  path = opensim_io.write_mot(tmp_path / 'q.mot', times, skel.coordinate_names, q,
                              in_degrees=True, rotational_mask=skel.rotational)
  raw = osim.TimeSeriesTable(path)
  assert raw.getTableMetaDataString('inDegrees') == 'yes'
  matrix = raw.getMatrix()
  values = np.array(matrix.to_numpy())
  rot, trans = skel.rotational, skel.translational
  np.testing.assert_allclose(values[:, rot], np.degrees(q[:, rot]), rtol=1e-12)
  np.testing.assert_allclose(values[:, trans], q[:, trans], rtol=1e-12)
  beta = skel.coordinate_index('knee_angle_r_beta')  # coupled: OpenSim keeps radians
  assert not rot[beta]
  np.testing.assert_allclose(values[:, beta], q[:, beta], rtol=1e-12)
  for rotational in (None, skel, str(skel.source), dict(zip(skel.coordinate_names, rot)), rot):
    t2, n2, q2 = opensim_io.read_mot(path, rotational=rotational)
    assert n2 == list(skel.coordinate_names)
    np.testing.assert_allclose(t2, times, atol=1e-12)
    np.testing.assert_allclose(q2, q, rtol=1e-12, atol=1e-14)


def test_mot_in_radians(tmp_path, skel):
  q = _random_pose_batch(skel, 3, seed=2)
  path = opensim_io.write_mot(tmp_path / 'q.sto', opensim_io.uniform_times(3, 100),
                              skel.coordinate_names, q, in_degrees=False)
  assert osim.TimeSeriesTable(path).getTableMetaDataString('inDegrees') == 'no'
  _, _, back = opensim_io.read_mot(path, rotational=np.zeros(skel.num_coordinates, bool))
  np.testing.assert_allclose(back, q, rtol=1e-12, atol=1e-14)


def test_mot_drives_the_model_in_opensim(tmp_path, skel, project_model_path):
  """OpenSim's TableProcessor converts our degrees (from its own motion types) and a
  StatesTrajectory built from the file poses the model as setting the values does."""
  q = _random_pose_batch(skel, 3, seed=3)
  path = opensim_io.write_mot(tmp_path / 'drive.mot', opensim_io.uniform_times(3, 60.0),
                              skel.coordinate_names, q, in_degrees=True,
                              rotational_mask=skel.rotational)
  model = osim.Model(str(project_model_path))
  model.initSystem()
  processor = osim.TableProcessor(path)
  processor.append(osim.TabOpConvertDegreesToRadians())
  processor.append(osim.TabOpUseAbsoluteStateNames())
  table = processor.process(model)
  trajectory = osim.StatesTrajectory.createFromStatesTable(model, table, True, False, True)
  assert trajectory.getSize() == 3
  markers = model.getMarkerSet()
  driven = []
  for i in range(trajectory.getSize()):
    state = trajectory.get(i)
    model.realizePosition(state)
    driven.append([[markers.get(n).getLocationInGround(state)[k] for k in range(3)]
                   for n in skel.marker_names])
  expected = oracle.opensim_fk(str(project_model_path), q,
                               coordinate_names=skel.coordinate_names, body_names=[],
                               joint_names=[], marker_names=skel.marker_names)['markers']
  # The trajectory is assembled (couplers) to OpenSim's assembly accuracy.
  np.testing.assert_allclose(np.array(driven), expected, atol=1e-6)


def test_read_states_file_reduces_to_coordinates(tmp_path):
  labels = ['/jointset/hip_r/hip_flexion_r/value', '/jointset/hip_r/hip_flexion_r/speed',
            '/jointset/ground_pelvis/pelvis_tx/value']
  table = osim.TimeSeriesTable([0.0, 0.1], osim.Matrix.createFromMat(
      np.array([[0.1, 5.0, 0.3], [0.2, 6.0, 0.4]])), labels)
  table.addTableMetaDataString('inDegrees', 'no')
  path = str(tmp_path / 'states.sto')
  osim.STOFileAdapter.write(table, path)
  _, names, values = opensim_io.read_mot(path)
  assert names == ['hip_flexion_r', 'pelvis_tx']
  np.testing.assert_allclose(values, [[0.1, 0.3], [0.2, 0.4]])


def test_bad_input_is_refused(tmp_path):
  times = opensim_io.uniform_times(2, 60)
  with pytest.raises(ValueError, match=r'\(T, M, 3\)'):
    opensim_io.write_trc(tmp_path / 'x.trc', times, ['A'], np.zeros((2, 3)))
  with pytest.raises(ValueError, match='units'):
    opensim_io.write_trc(tmp_path / 'x.trc', times, ['A'], np.zeros((2, 1, 3)), units='in')
  with pytest.raises(ValueError, match='duplicate'):
    opensim_io.write_trc(tmp_path / 'x.trc', times, ['A', 'A'], np.zeros((2, 2, 3)))
  with pytest.raises(ValueError, match='increasing'):
    opensim_io.write_trc(tmp_path / 'x.trc', [0.1, 0.0], ['A'], np.zeros((2, 1, 3)))
  with pytest.raises(ValueError, match='rotational_mask'):
    opensim_io.write_mot(tmp_path / 'x.mot', times, ['a', 'b'], np.zeros((2, 2)), in_degrees=True)
  with pytest.raises(ValueError, match='whitespace'):
    opensim_io.write_mot(tmp_path / 'x.mot', times, ['a b'], np.zeros((2, 1)), in_degrees=False)
  with pytest.raises(FileNotFoundError):
    opensim_io.read_trc(tmp_path / 'missing.trc')

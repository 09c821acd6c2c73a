"""Exported .mot/.trc/.osim files load in OpenSim, and OpenSim's IK on them agrees."""

import numpy as np
import pytest

from banet_jax import export, opensim_io
from banet_jax.skeleton import apply_couplers, forward_kinematics, load_osim
from banet_jax.skeleton.models import DEFAULT_MODEL_PATH

osim = pytest.importorskip('opensim')


@pytest.fixture(scope='module')
def clip():
  skel = load_osim(DEFAULT_MODEL_PATH)
  rng = np.random.default_rng(3)
  t = np.linspace(0, 1, 12)[:, None]
  lo, hi = skel.coordinate_ranges.T
  mid = np.clip(skel.default_coordinates, lo + 0.1 * (hi - lo), hi - 0.1 * (hi - lo))
  span = 0.2 * (hi - lo) * rng.uniform(-1, 1, lo.shape)
  coords = mid + span * np.sin(2 * np.pi * t)
  coords[:, skel.locked] = skel.default_coordinates[skel.locked]
  scales = rng.uniform(0.9, 1.15, (len(skel.body_names), 3))
  # Coupled coordinates follow their independent ones, as OpenSim enforces them.
  coords = np.asarray(apply_couplers(skel, coords, np.broadcast_to(scales, (len(t),) + scales.shape)),
                      np.float64)
  return skel, coords, scales


def test_export_writes_files_opensim_reads(tmp_path, clip):
  skel, coords, scales = clip
  osim.Logger.setLevelString('error')
  paths = export.export_clip(tmp_path, 'c0', coords, scales, fps=30.0, mass=70.0)
  model = osim.Model(paths['osim'])
  state = model.initSystem()
  assert model.getName() == 'c0'
  # The .mot round-trips (degrees in the file, radians here).
  times, names, values = opensim_io.read_mot(paths['mot'], rotational=skel.rotational)
  assert names == list(skel.coordinate_names)
  np.testing.assert_allclose(values, coords, atol=1e-6)
  np.testing.assert_allclose(np.diff(times), 1 / 30.0, atol=1e-9)
  # OpenSim's own scaled model puts its markers where the skeleton layer does.
  table = osim.TimeSeriesTableVec3(paths['trc'])
  assert table.getNumRows() == len(coords)
  markers = model.getMarkerSet()
  coordinate_set = model.getCoordinateSet()
  k = 5
  for c, name in enumerate(skel.coordinate_names):
    coordinate_set.get(name).setValue(state, float(coords[k, c]), False)
  model.realizePosition(state)
  fk = np.asarray(forward_kinematics(skel, coords[k], scales).markers)
  for m, name in enumerate(skel.marker_names):
    loc = markers.get(name).getLocationInGround(state)
    np.testing.assert_allclose([loc.get(i) for i in range(3)], fk[m], atol=1e-4)
  # Mass preserved as asked.
  assert model.getTotalMass(state) == pytest.approx(70.0, rel=1e-6)


def test_opensim_ik_on_the_exported_trc_recovers_the_mot(tmp_path, clip):
  skel, coords, scales = clip
  osim.Logger.setLevelString('error')
  paths = export.export_clip(tmp_path, 'c1', coords, scales, fps=30.0)
  tool = osim.InverseKinematicsTool()
  tool.set_model_file(paths['osim'])
  tool.set_marker_file(paths['trc'])
  tool.set_output_motion_file(str(tmp_path / 'ik.mot'))
  tool.set_results_directory(str(tmp_path))
  tool.set_accuracy(1e-7)  # the default 1e-5 stops early on some frames
  tool.setStartTime(0.0)
  tool.setEndTime((len(coords) - 1) / 30.0)
  assert tool.run()
  _, names, values = opensim_io.read_mot(tmp_path / 'ik.mot', rotational=skel.rotational)
  index = [names.index(n) for n in skel.coordinate_names]
  diff = values[:, index] - coords
  rot = skel.rotational
  assert np.degrees(np.abs(np.angle(np.exp(1j * diff[:, rot])))).max() < 0.5
  assert np.abs(diff[:, ~rot]).max() < 1e-3


def test_bad_inputs(tmp_path, clip):
  skel, coords, scales = clip
  with pytest.raises(ValueError, match='coordinates'):
    export.export_clip(tmp_path, 'x', coords[:, :5], scales, fps=30)
  with pytest.raises(ValueError, match='scales'):
    export.export_clip(tmp_path, 'x', coords, scales[:3], fps=30)
  with pytest.raises(ValueError, match='positive'):
    export.scale_osim(DEFAULT_MODEL_PATH, skel.body_names, -scales, tmp_path / 'x.osim')
  with pytest.raises(ValueError, match='not in'):
    export.scale_osim(DEFAULT_MODEL_PATH, ['nobody'], scales[:1], tmp_path / 'x.osim')

"""Tests of the project's full-body OpenSim model (banet_jax/skeleton/models).

The model file is generated from `fullbody_table.py` by `build_fullbody.py`; these
tests check that the committed file loads in OpenSim, has the Rajagopal 2016
topology and coordinate order, carries physiological ranges and an anatomical
marker set, stands on the floor, is left/right symmetric, moves in the expected
directions, and equals a fresh build of the table.
"""

from __future__ import annotations

import math
import os
import pathlib

import numpy as np
import pytest

osim = pytest.importorskip('opensim')

from banet_jax.skeleton.models import DEFAULT_MODEL_PATH, model_path  # noqa: E402
from banet_jax.skeleton.models import build_fullbody  # noqa: E402
from banet_jax.skeleton.models import fullbody_table as table  # noqa: E402

EXPECTED_BODIES = (
    'pelvis', 'femur_r', 'tibia_r', 'patella_r', 'talus_r', 'calcn_r', 'toes_r',
    'femur_l', 'tibia_l', 'patella_l', 'talus_l', 'calcn_l', 'toes_l', 'torso',
    'humerus_r', 'ulna_r', 'radius_r', 'hand_r', 'humerus_l', 'ulna_l', 'radius_l', 'hand_l')

EXPECTED_JOINTS = (
    ('ground_pelvis', 'CustomJoint'), ('hip_r', 'CustomJoint'),
    ('walker_knee_r', 'CustomJoint'), ('patellofemoral_r', 'CustomJoint'),
    ('ankle_r', 'PinJoint'), ('subtalar_r', 'PinJoint'), ('mtp_r', 'PinJoint'),
    ('hip_l', 'CustomJoint'), ('walker_knee_l', 'CustomJoint'),
    ('patellofemoral_l', 'CustomJoint'), ('ankle_l', 'PinJoint'), ('subtalar_l', 'PinJoint'),
    ('mtp_l', 'PinJoint'), ('back', 'CustomJoint'), ('acromial_r', 'CustomJoint'),
    ('elbow_r', 'PinJoint'), ('radioulnar_r', 'PinJoint'), ('radius_hand_r', 'UniversalJoint'),
    ('acromial_l', 'CustomJoint'), ('elbow_l', 'PinJoint'), ('radioulnar_l', 'PinJoint'),
    ('radius_hand_l', 'UniversalJoint'))

# Rajagopal2016.osim's getCoordinateSet() order (used when that file is not present).
EXPECTED_COORDINATES = (
    'pelvis_tilt', 'pelvis_list', 'pelvis_rotation', 'pelvis_tx', 'pelvis_ty', 'pelvis_tz',
    'hip_flexion_r', 'hip_adduction_r', 'hip_rotation_r', 'knee_angle_r', 'knee_angle_r_beta',
    'ankle_angle_r', 'subtalar_angle_r', 'mtp_angle_r',
    'hip_flexion_l', 'hip_adduction_l', 'hip_rotation_l', 'knee_angle_l', 'knee_angle_l_beta',
    'ankle_angle_l', 'subtalar_angle_l', 'mtp_angle_l',
    'lumbar_extension', 'lumbar_bending', 'lumbar_rotation',
    'arm_flex_r', 'arm_add_r', 'arm_rot_r', 'elbow_flex_r', 'pro_sup_r', 'wrist_flex_r',
    'wrist_dev_r',
    'arm_flex_l', 'arm_add_l', 'arm_rot_l', 'elbow_flex_l', 'pro_sup_l', 'wrist_flex_l',
    'wrist_dev_l')

# Required anatomical landmarks: marker name -> body it must be attached to.
REQUIRED_MARKERS = {}
for _s, _p in (('r', 'R'), ('l', 'L')):
  REQUIRED_MARKERS.update({
      f'{_p}ASI': 'pelvis', f'{_p}PSI': 'pelvis',                       # ASIS, PSIS
      f'{_p}GTR': f'femur_{_s}',                                        # greater trochanter
      f'{_p}LFC': f'femur_{_s}', f'{_p}MFC': f'femur_{_s}',             # femoral epicondyles
      f'{_p}LMAL': f'tibia_{_s}', f'{_p}MMAL': f'tibia_{_s}',           # malleoli
      f'{_p}CAL': f'calcn_{_s}', f'{_p}TOE': f'calcn_{_s}',             # heel, toe
      f'{_p}MT1': f'calcn_{_s}', f'{_p}MT5': f'calcn_{_s}',             # metatarsal heads
      f'{_p}ACR': 'torso',                                              # acromion
      f'{_p}LEL': f'humerus_{_s}', f'{_p}MEL': f'humerus_{_s}',         # humeral epicondyles
      f'{_p}WRA': f'radius_{_s}', f'{_p}WRB': f'ulna_{_s}',             # radial, ulnar styloid
      f'{_p}FHD': 'torso', f'{_p}BHD': 'torso', f'{_p}HEAD': 'torso',   # head markers
      f'{_p}HJC': f'femur_{_s}', f'{_p}KJC': f'tibia_{_s}', f'{_p}AJC': f'talus_{_s}',
      f'{_p}SJC': f'humerus_{_s}', f'{_p}EJC': f'humerus_{_s}', f'{_p}WJC': f'radius_{_s}',
  })
REQUIRED_MARKERS.update({'C7': 'torso', 'CLAV': 'torso', 'STRN': 'torso', 'FHEAD': 'torso',
                         'BHEAD': 'torso', 'HEAD_TOP': 'torso'})

FOOT_MARKERS = ('CAL', 'TOE', 'MT1', 'MT5', 'HLX')
HEAD_MARKERS = ('FHEAD', 'BHEAD', 'RFHD', 'LFHD', 'RBHD', 'LBHD', 'RHEAD', 'LHEAD', 'HEAD_TOP')


def _reference_model_path() -> pathlib.Path | None:
  dirs = [os.environ.get('BANET_EXTRA_OSIM_DIR'),
          pathlib.Path(__file__).resolve().parents[2] / 'shared' / 'osim',
          '/work/shared/osim']
  for d in dirs:
    if d and (pathlib.Path(d) / 'Rajagopal2016.osim').is_file():
      return pathlib.Path(d) / 'Rajagopal2016.osim'
  return None


class Posed:
  """The model with a state; `pose(**q)` sets coordinates (others at default)."""

  def __init__(self, path):
    self.model = osim.Model(str(path))
    self.state = self.model.initSystem()
    self.coords = self.model.getCoordinateSet()
    self.markers = self.model.getMarkerSet()

  def pose(self, **values):
    for i in range(self.coords.getSize()):
      c = self.coords.get(i)
      c.setValue(self.state, c.getDefaultValue(), False)
    for name, v in values.items():
      self.coords.get(name).setValue(self.state, v, False)
    self.model.realizePosition(self.state)
    return self

  def marker(self, name) -> np.ndarray:
    p = self.markers.get(name).getLocationInGround(self.state)
    return np.array([p.get(0), p.get(1), p.get(2)])

  def all_markers(self) -> dict[str, np.ndarray]:
    return {self.markers.get(i).getName(): self.marker(self.markers.get(i).getName())
            for i in range(self.markers.getSize())}


@pytest.fixture(scope='module')
def posed():
  assert DEFAULT_MODEL_PATH.is_file(), (
      f'{DEFAULT_MODEL_PATH} missing: run python -m banet_jax.skeleton.models.build_fullbody')
  return Posed(DEFAULT_MODEL_PATH)


def _names(object_set):
  return tuple(object_set.get(i).getName() for i in range(object_set.getSize()))


# ---------------------------------------------------------------------------------

def test_default_model_path():
  assert model_path(None) == model_path('') == DEFAULT_MODEL_PATH
  assert model_path('x.osim').name == 'x.osim'
  assert DEFAULT_MODEL_PATH.name == 'banet_fullbody.osim'
  assert DEFAULT_MODEL_PATH.is_file()


def test_loads_and_initialises(posed):
  assert posed.model.getName() == 'banet_fullbody'
  assert posed.model.getNumStateVariables() >= 2 * 39
  assert abs(posed.model.getTotalMass(posed.state) - table.BODY_MASS) < 1e-6


def test_bodies_and_joints(posed):
  assert _names(posed.model.getBodySet()) == EXPECTED_BODIES
  joints = posed.model.getJointSet()
  got = tuple((joints.get(i).getName(), joints.get(i).getConcreteClassName())
              for i in range(joints.getSize()))
  assert got == EXPECTED_JOINTS
  for i in range(joints.getSize()):
    j = joints.get(i)
    for frame in (j.getParentFrame(), j.getChildFrame()):
      # joint frames are PhysicalOffsetFrames on the bodies (or Ground for the root)
      assert frame.getConcreteClassName() == 'PhysicalOffsetFrame'


def test_coordinate_order(posed):
  got = _names(posed.coords)
  assert got == EXPECTED_COORDINATES
  assert got == table.COORDINATE_NAMES
  ref = _reference_model_path()
  if ref is not None:
    ref_model = osim.Model(str(ref))
    assert got == _names(ref_model.getCoordinateSet())
    # Same motion types too (they decide which .mot columns are in degrees).
    ours = [posed.coords.get(i).getMotionType() for i in range(posed.coords.getSize())]
    theirs = [ref_model.getCoordinateSet().get(i).getMotionType() for i in range(len(got))]
    assert ours == theirs


def test_coordinate_ranges_physiological(posed):
  deg = math.degrees
  ranges = {}
  for i in range(posed.coords.getSize()):
    c = posed.coords.get(i)
    lo, hi = c.getRangeMin(), c.getRangeMax()
    assert lo < hi, c.getName()
    assert lo <= c.getDefaultValue() <= hi, c.getName()
    ranges[c.getName()] = (lo, hi)
    if c.getMotionType() != 2 and not c.getName().startswith('pelvis'):  # anatomical
      assert -180.0 - 1e-6 <= deg(lo) and deg(hi) <= 180.0 + 1e-6, c.getName()
      assert deg(hi - lo) >= 20.0, c.getName()
  for s in ('r', 'l'):
    lo, hi = ranges[f'knee_angle_{s}']
    assert lo == 0.0 and 115.0 <= deg(hi) <= 140.0
    assert ranges[f'knee_angle_{s}_beta'] == ranges[f'knee_angle_{s}']
    assert deg(ranges[f'hip_flexion_{s}'][1]) >= 110 and deg(ranges[f'hip_flexion_{s}'][0]) <= -10
    assert -60 <= deg(ranges[f'ankle_angle_{s}'][0]) <= -30
    assert 10 <= deg(ranges[f'ankle_angle_{s}'][1]) <= 30
    assert 130 <= deg(ranges[f'elbow_flex_{s}'][1]) <= 160 and ranges[f'elbow_flex_{s}'][0] == 0
    for root in ('hip_flexion', 'hip_adduction', 'hip_rotation', 'arm_flex', 'arm_add',
                 'arm_rot', 'wrist_flex', 'wrist_dev', 'pro_sup', 'subtalar_angle', 'mtp_angle'):
      assert ranges[f'{root}_r'] == ranges[f'{root}_l']
  assert 1.5 < ranges['pelvis_ty'][1]


def test_coupler(posed):
  cons = posed.model.getConstraintSet()
  couplers = {}
  for i in range(cons.getSize()):
    c = osim.CoordinateCouplerConstraint.safeDownCast(cons.get(i))
    assert c is not None
    couplers[c.getDependentCoordinateName()] = c
  assert set(couplers) == {'knee_angle_r_beta', 'knee_angle_l_beta'}
  for s in ('r', 'l'):
    c = couplers[f'knee_angle_{s}_beta']
    assert c.getIndependentCoordinateNames().getSize() == 1
    assert c.getIndependentCoordinateNames().get(0) == f'knee_angle_{s}'
    f = osim.LinearFunction.safeDownCast(c.getFunction())
    assert f is not None and f.getSlope() == 1.0 and f.getIntercept() == 0.0
  posed.pose()
  posed.coords.get('knee_angle_l').setValue(posed.state, 0.8, True)  # enforce constraints
  assert abs(posed.coords.get('knee_angle_l_beta').getValue(posed.state) - 0.8) < 1e-6


def test_markers_present(posed):
  names = _names(posed.markers)
  assert len(names) >= 40
  assert len(set(names)) == len(names)
  for name, body in REQUIRED_MARKERS.items():
    assert name in names, name
    assert posed.markers.get(name).getParentFrame().getName() == body, name
  assert names == table.MARKER_NAMES


def test_no_muscles_and_no_missing_meshes(posed):
  assert posed.model.getForceSet().getSize() == 0
  text = DEFAULT_MODEL_PATH.read_text()
  assert '<mesh_file>' not in text


def test_regeneration_is_identical(tmp_path):
  out = build_fullbody.write_model(tmp_path / 'rebuilt.osim')
  assert out.read_bytes() == DEFAULT_MODEL_PATH.read_bytes(), (
      'banet_fullbody.osim differs from fullbody_table.py: regenerate it with '
      'python -m banet_jax.skeleton.models.build_fullbody')


def test_default_pose_stands_on_floor(posed):
  assert abs(posed.coords.get('pelvis_ty').getDefaultValue() - table.PELVIS_DEFAULT_HEIGHT) < 1e-6
  markers = posed.pose().all_markers()
  for p in ('R', 'L'):
    for root in FOOT_MARKERS:
      y = markers[p + root][1]
      assert -0.005 <= y <= 0.05, (p + root, y)
  for name in HEAD_MARKERS:
    assert 1.6 <= markers[name][1] <= 1.9, (name, markers[name][1])
  assert abs(markers['HEAD_TOP'][1] - table.STATURE) < 1e-3
  # Vertical order of the main landmarks (standing).
  y = {k: v[1] for k, v in markers.items()}
  assert y['RAJC'] < y['RKJC'] < y['RHJC'] < y['RASI'] < y['CLAV'] < y['C7'] < y['HEAD_TOP']
  assert y['RWJC'] < y['REJC'] < y['RSJC'] < y['RACR']
  # Front/back and medial/lateral order.
  assert markers['RASI'][0] > markers['RPSI'][0]
  assert markers['CLAV'][0] > markers['C7'][0]
  assert markers['RTOE'][0] > markers['RAJC'][0] > markers['RCAL'][0]
  assert markers['RLFC'][2] > markers['RMFC'][2]
  assert markers['RLMAL'][2] > markers['RMMAL'][2]
  assert markers['RLEL'][2] > markers['RMEL'][2]
  assert markers['RWRA'][2] > markers['RWRB'][2]  # palm forward: radius lateral
  assert markers['RMT5'][2] > markers['RMT1'][2]


def test_mirror_symmetry_at_zero_pose(posed):
  markers = posed.pose().all_markers()
  for name, p in markers.items():
    if name[0] == 'R' and 'L' + name[1:] in markers:
      q = markers['L' + name[1:]]
      np.testing.assert_allclose(q, p * np.array([1.0, 1.0, -1.0]), atol=1e-9, err_msg=name)
    elif name[0] not in 'RL':
      assert abs(p[2]) < 1e-9, name


def _moved(posed, marker, **q):
  before = posed.pose().marker(marker)
  after = posed.pose(**q).marker(marker)
  return after - before


@pytest.mark.parametrize('s,p,lat', [('r', 'R', 1.0), ('l', 'L', -1.0)])
def test_postures(posed, s, p, lat):
  # Hip flexion moves the knee forward.
  assert _moved(posed, f'{p}KJC', **{f'hip_flexion_{s}': 0.6})[0] > 0.15
  # Knee flexion moves the ankle backward and up.
  d = _moved(posed, f'{p}AJC', **{f'knee_angle_{s}': 1.0, f'knee_angle_{s}_beta': 1.0})
  assert d[0] < -0.25 and d[1] > 0.1
  # Hip adduction moves the knee medially.
  assert lat * _moved(posed, f'{p}KJC', **{f'hip_adduction_{s}': 0.3})[2] < -0.05
  # Ankle dorsiflexion raises the toes.
  assert _moved(posed, f'{p}HLX', **{f'ankle_angle_{s}': 0.3})[1] > 0.03
  # Arm abduction (negative arm_add) raises the hand and moves it laterally.
  d = _moved(posed, f'{p}WJC', **{f'arm_add_{s}': -1.2})
  assert d[1] > 0.2 and lat * d[2] > 0.3
  # Shoulder flexion moves the hand forward; elbow flexion too.
  assert _moved(posed, f'{p}WJC', **{f'arm_flex_{s}': 0.8})[0] > 0.3
  assert _moved(posed, f'{p}WJC', **{f'elbow_flex_{s}': 1.5})[0] > 0.2
  # Pronation turns the radial styloid towards the midline (palm backward).
  assert lat * _moved(posed, f'{p}WRA', **{f'pro_sup_{s}': 1.5})[2] < -0.02
  # Wrist flexion moves the knuckles forward (palm faces forward at zero).
  assert _moved(posed, f'{p}MCP2', **{f'wrist_flex_{s}': 0.8})[0] > 0.03
  # Subtalar inversion lowers the lateral forefoot relative to the medial one.
  d5 = _moved(posed, f'{p}MT5', **{f'subtalar_angle_{s}': 0.3})
  d1 = _moved(posed, f'{p}MT1', **{f'subtalar_angle_{s}': 0.3})
  assert d5[1] < d1[1]


def test_trunk_postures(posed):
  assert _moved(posed, 'HEAD_TOP', lumbar_extension=0.3)[0] < -0.1
  assert _moved(posed, 'HEAD_TOP', pelvis_tilt=-0.3)[0] > 0.1  # anterior tilt: forward


def test_table_is_consistent():
  assert len(table.BODIES) == 22 and len(table.JOINTS) == 22 and len(table.COORDINATES) == 39
  assert abs(sum(b.mass for b in table.BODIES) - table.BODY_MASS) < 1e-4
  assert len(set(table.MARKER_NAMES)) == len(table.MARKER_NAMES)
  assert all(len(v) == len(table.KNEE_KNOTS) for v in table.KNEE_SPLINES.values())
  assert table.KNEE_KNOTS[-1] >= table.COORDINATES[9].upper - 1e-5

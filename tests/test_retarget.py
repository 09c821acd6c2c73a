"""Tests of the generic retargeting (odah_tfds/body/retarget.py) and of its use on anny."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from banet_jax.skeleton.models import project_skeleton
from odah_tfds.body import anny_body as ab
from odah_tfds.body import retarget as rt


@pytest.fixture(scope='module')
def skel():
  return project_skeleton()


def coords(skel, **values):
  """Default coordinates with some set (degrees for rotations, metres otherwise)."""
  q = np.asarray(skel.default_coordinates, dtype=np.float64).copy()
  for name, v in values.items():
    i = skel.coordinate_index(name)
    q[i] = v if name in ('pelvis_tx', 'pelvis_ty', 'pelvis_tz') else np.radians(v)
  for s in 'rl':
    q[skel.coordinate_index(f'knee_angle_{s}_beta')] = q[skel.coordinate_index(f'knee_angle_{s}')]
  return q


# ---- generic pieces ---------------------------------------------------------------------------

def test_anatomical_frames_of_the_model_at_zero_pose(skel):
  """On the project model at the anatomical posture the limb frames are (nearly) the
  ground axes -- the frame definitions match the model's body frames."""
  _, _, markers = rt.project_fk(np.asarray(skel.default_coordinates)[None], skel)
  frames = rt.anatomical_frames({n: markers[0, i] for i, n in enumerate(skel.marker_names)},
                                ('pelvis', 'femur_r', 'femur_l', 'humerus_r', 'humerus_l',
                                 'calcn_r', 'tibia_l', 'torso'))
  for body, f in frames.items():
    np.testing.assert_allclose(f @ f.T, np.eye(3), atol=1e-9)
    assert np.linalg.det(f) == pytest.approx(1.0)
    angle = np.degrees(np.linalg.norm(Rotation.from_matrix(f).as_rotvec()))
    assert angle < 10.0, (body, angle)
  for body in ('pelvis', 'femur_r', 'femur_l', 'humerus_r'):
    np.testing.assert_allclose(frames[body], np.eye(3), atol=1e-6)


def test_fit_rest_coordinates_recovers_a_known_posture(skel):
  q_true = coords(skel, hip_flexion_r=5, hip_adduction_r=-8, hip_rotation_r=-10, knee_angle_r=6,
                  ankle_angle_r=4, subtalar_angle_r=5, hip_adduction_l=-4, knee_angle_l=12,
                  arm_add_r=-40, elbow_flex_r=30, pro_sup_r=100, wrist_flex_r=10,
                  arm_add_l=-85, arm_flex_l=10, pro_sup_l=80, wrist_dev_l=5)
  _, _, markers = rt.project_fk(q_true[None], skel)
  q, errors = rt.fit_rest_coordinates({n: markers[0, i] for i, n in enumerate(skel.marker_names)},
                                      skel)
  assert max(errors.values()) < 0.05
  # Compare orientations, not raw angles (several coordinate sets can be equivalent).
  rot_fit, _, _ = rt.project_fk(q[None], skel)
  rot_true, _, _ = rt.project_fk(q_true[None], skel)
  for b in ('femur_r', 'tibia_r', 'calcn_r', 'femur_l', 'humerus_r', 'radius_r', 'hand_r',
            'humerus_l', 'radius_l'):
    i = skel.body_index(b)
    diff = Rotation.from_matrix(rot_fit[0, i].T @ rot_true[0, i]).magnitude()
    assert np.degrees(diff) < 0.1, b
  assert np.degrees(q[skel.coordinate_index('knee_angle_r')]) == pytest.approx(6.0, abs=0.1)
  assert np.degrees(q[skel.coordinate_index('elbow_flex_r')]) == pytest.approx(30.0, abs=0.1)


def _toy_rig():
  # root (pelvis) -> a (femur_r) -> b (rigid) ; root -> c (half way pelvis -> torso)
  g0 = Rotation.from_rotvec([[0, 0, 0], [0.3, 0, 0], [0, 0.5, 0], [0.1, 0.2, 0.3]]).as_matrix()
  return rt.Rig(bone_names=('root', 'a', 'b', 'c'), parents=(-1, 0, 1, 0), rest_rotations=g0,
                drivers=(rt.BoneDriver('pelvis'), rt.BoneDriver('femur_r'), rt.BoneDriver(None),
                         rt.BoneDriver('torso', 'pelvis', 0.5)))


def test_bone_deltas_and_local_rotations_compose_back(skel):
  rig = _toy_rig()
  rng = np.random.default_rng(0)
  body_deltas = Rotation.random(2 * skel.num_bodies, random_state=1).as_matrix().reshape(
      2, skel.num_bodies, 3, 3)
  bone = rt.bone_rotation_deltas(rig, body_deltas, skel)
  np.testing.assert_allclose(bone[:, 0], body_deltas[:, skel.body_index('pelvis')])
  np.testing.assert_allclose(bone[:, 1], body_deltas[:, skel.body_index('femur_r')])
  np.testing.assert_allclose(bone[:, 2], bone[:, 1])  # rigid with its parent
  # Half-way bone: its rotation relative to the pelvis is half of the torso's.
  pel, tor = body_deltas[:, skel.body_index('pelvis')], body_deltas[:, skel.body_index('torso')]
  for t in range(2):
    half = Rotation.from_matrix(pel[t].T @ bone[t, 3]).as_rotvec()
    full = Rotation.from_matrix(pel[t].T @ tor[t]).as_rotvec()
    np.testing.assert_allclose(half, 0.5 * full, atol=1e-9)
  # Local rotations recompose the world orientations W_c = W_p G0_p^T G0_c D_c.
  local = rt.local_rotations(rig, bone)
  g0 = rig.rest_rotations
  world = np.einsum('tbij,bjk->tbik', bone, g0)
  np.testing.assert_allclose(world[:, 0], g0[0] @ local[:, 0], atol=1e-12)
  for c, p in enumerate(rig.parents):
    if p < 0:
      continue
    recomposed = np.einsum('tij,jk,kl,tlm->tim', world[:, p], g0[p].T, g0[c], local[:, c])
    np.testing.assert_allclose(recomposed, world[:, c], atol=1e-12)
  # Identity deltas give identity local rotations (the rest posture).
  ident = np.broadcast_to(np.eye(3), (1, skel.num_bodies, 3, 3))
  np.testing.assert_allclose(rt.local_rotations(rig, rt.bone_rotation_deltas(rig, ident, skel)),
                             np.broadcast_to(np.eye(3), (1, 4, 3, 3)), atol=1e-12)
  del rng


def test_rig_validation():
  with pytest.raises(ValueError, match='parents'):
    rt.Rig(('a', 'b'), (-1, 1), np.tile(np.eye(3), (2, 1, 1)),
           (rt.BoneDriver('pelvis'), rt.BoneDriver(None)))
  with pytest.raises(ValueError, match='root bone'):
    rt.Rig(('a',), (-1,), np.eye(3)[None], (rt.BoneDriver(None),))


def test_check_motion_errors(skel):
  with pytest.raises(ValueError, match=r'shape \(T, 39\)'):
    rt.check_motion(np.zeros((5, 38)), skel)
  with pytest.raises(ValueError, match='non-finite'):
    rt.check_motion(np.full((2, 39), np.nan), skel)

  class Motion:  # anything with .coordinates (the shared Motion type) is accepted
    coordinates = np.zeros((3, 39))
    coordinate_names = tuple(skel.coordinate_names)

  assert rt.check_motion(Motion(), skel).shape == (3, 39)
  Motion.coordinate_names = tuple(reversed(skel.coordinate_names))
  with pytest.raises(ValueError, match='coordinate_names differ'):
    rt.check_motion(Motion(), skel)


# ---- retargeting onto anny ------------------------------------------------------------------------

@pytest.fixture(scope='module')
def anny():
  return ab.AnnyBody()


def _sagittal(a, b):
  """Signed angle (deg) from vector a to vector b in the x-y plane."""
  return np.degrees(np.arctan2(a[0] * b[1] - a[1] * b[0], a[0] * b[0] + a[1] * b[1]))


def _frontal_from_down(v):
  """Angle (deg) of v from straight down in the y-z plane."""
  return np.degrees(np.arctan2(abs(v[2]), -v[1]))


def _angle(a, b):
  return np.degrees(np.arccos(np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b)))


MEASURES = {
    'knee_r': lambda m: _sagittal(m['RKJC'] - m['RHJC'], m['RAJC'] - m['RKJC']),
    'hip_r': lambda m: _sagittal(np.array([0.0, -1.0, 0.0]), m['RKJC'] - m['RHJC']),
    'shoulder_abd_l': lambda m: _frontal_from_down(m['LEJC'] - m['LSJC']),
    'elbow_l': lambda m: _angle(m['LEJC'] - m['LSJC'], m['LWJC'] - m['LEJC']),
    'head_pitch': lambda m: _sagittal(np.array([1.0, 0.0, 0.0]), m['FHEAD'] - m['BHEAD']),
}


def test_known_joint_rotations_move_the_mesh_as_the_model(anny, skel):
  subject = ab.AnnySubject()
  motion = np.stack([
      coords(skel),
      coords(skel, knee_angle_r=60, hip_flexion_r=30),
      coords(skel, arm_add_l=-45, elbow_flex_l=90),
      coords(skel, lumbar_extension=-20),
  ])
  fr = anny.pose_motion(subject, motion)
  _, _, model_markers = rt.project_fk(motion, skel)

  def mesh(k):
    return {n: fr.markers[k, i].astype(np.float64) for i, n in enumerate(fr.marker_names)}

  def model(k):
    return {n: model_markers[k, i] for i, n in enumerate(skel.marker_names)}

  def change(measure, k):
    return (MEASURES[measure](mesh(k)) - MEASURES[measure](mesh(0)),
            MEASURES[measure](model(k)) - MEASURES[measure](model(0)))

  # Right knee flexed 60 deg: the shank turns ~60 deg against the thigh (flexion is
  # negative in this signed x-y angle), the thigh by the 30 deg of hip flexion.
  mesh_knee, model_knee = change('knee_r', 1)
  assert model_knee == pytest.approx(-60.0, abs=3.0)
  assert mesh_knee == pytest.approx(model_knee, abs=3.0)
  mesh_hip, model_hip = change('hip_r', 1)
  assert mesh_hip == pytest.approx(model_hip, abs=3.0) and model_hip == pytest.approx(30.0, abs=2)
  # Left shoulder abducted 45 deg, elbow flexed 90 deg. The elbow is compared flexed
  # (forearm ~ perpendicular to the upper arm) rather than as a change, which would
  # include the difference between anny's and the model's carrying angle (10 deg).
  got, want = change('shoulder_abd_l', 2)
  assert want == pytest.approx(45.0, abs=3.0) and got == pytest.approx(want, abs=4.0)
  elbow_mesh, elbow_model = MEASURES['elbow_l'](mesh(2)), MEASURES['elbow_l'](model(2))
  assert elbow_model == pytest.approx(90.0, abs=1.0)
  assert elbow_mesh == pytest.approx(elbow_model, abs=4.0)
  # Trunk flexed 20 deg: the head (rigid with the torso) pitches forward 20 deg.
  got, want = change('head_pitch', 3)
  assert want == pytest.approx(-20.0, abs=0.5) and got == pytest.approx(want, abs=1.0)
  # The right-leg motion leaves the left leg and the upper body where they were.
  for name in ('LHJC', 'LKJC', 'LAJC', 'LCAL', 'LTOE', 'LLFC', 'HEAD_TOP', 'LWJC', 'RWJC', 'C7'):
    np.testing.assert_allclose(mesh(1)[name], mesh(0)[name], atol=1e-4, err_msg=name)
  # ... and the left-arm motion leaves the right arm and the legs.
  for name in ('RSJC', 'REJC', 'RWJC', 'RKJC', 'LKJC', 'RAJC'):
    np.testing.assert_allclose(mesh(2)[name], mesh(0)[name], atol=1e-4, err_msg=name)


def test_root_translation_follows_the_pelvis(anny, skel):
  subject = ab.AnnySubject()
  cal = anny.calibration(subject)
  motion = np.stack([coords(skel), coords(skel, pelvis_tx=1.0, pelvis_tz=-0.5),
                     coords(skel, pelvis_rotation=90), coords(skel, pelvis_ty=0.5)])
  fr = anny.pose_motion(subject, motion)
  mid = 0.5 * (fr.marker('RASI') + fr.marker('LASI'))
  s = cal.translation_scale
  assert 0.85 < s < 1.05
  # mid-ASIS = s * pelvis origin (calibrated on the rest pose, exact for rigid pelvis skin).
  np.testing.assert_allclose(mid[1] - mid[0], [s * 1.0, 0.0, -s * 0.5], atol=2e-3)
  np.testing.assert_allclose(mid[2], mid[0], atol=2e-3)
  assert mid[3, 1] == pytest.approx(s * 0.5, abs=2e-3)
  # pelvis_rotation 90 deg (about y): the subject now faces -z (rotation of +x about +y).
  face = fr.marker('FHEAD')[2] - fr.marker('BHEAD')[2]
  assert face[2] < -0.12 and abs(face[0]) < 0.03


def test_retarget_is_deterministic_and_returns_native_poses(anny, skel):
  subject = ab.AnnySubject(gender=0.9)
  q = np.stack([coords(skel, knee_angle_l=30), coords(skel, arm_flex_r=45)])
  p1, r1 = anny.retarget(subject, q)
  p2, r2 = anny.retarget(subject, q)
  np.testing.assert_array_equal(p1.rotvecs, p2.rotvecs)
  np.testing.assert_array_equal(r1, r2)
  assert p1.rotvecs.shape == (2, 104, 3) and r1.shape == (2, 3)
  # Only mapped bones move: fingers, eyes, clavicles keep their rest (zero) rotations.
  for label in ('finger2-2.R', 'eye.L', 'clavicle.R', 'neck01', 'toe1-2.L'):
    np.testing.assert_allclose(p1.rotvecs[:, anny.bone_labels.index(label)], 0.0, atol=1e-9)

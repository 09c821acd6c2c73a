"""Tests of the SMPL-X backend on procedurally generated stand-in model files.

The real SMPL-X files are licensed and absent here: `smplx_standin` writes files in the
same format (all keys and shapes smplx reads) for a tube-and-ellipsoid humanoid, so
the loading, posing, marker, retargeting and error paths run end to end.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from banet_jax.skeleton.models import project_skeleton
from odah_tfds.body import base
from odah_tfds.body import markers as mk
from odah_tfds.body import retarget as rt
from odah_tfds.body import smplx_body as sb
from odah_tfds.body import smplx_standin as st


@pytest.fixture(scope='module')
def model_dir(tmp_path_factory):
  folder = tmp_path_factory.mktemp('manual') / 'smplx'
  st.write_standin_model(folder, 'neutral')
  st.write_standin_model(folder, 'male')
  return folder


@pytest.fixture(scope='module')
def body(model_dir):
  return sb.SmplxBody(model_dir)


@pytest.fixture(scope='module')
def skel():
  return project_skeleton()


def markers_of(frames, k=0):
  return {n: frames.markers[k, i].astype(np.float64) for i, n in enumerate(frames.marker_names)}


def test_standin_file_has_the_smplx_format(model_dir):
  shapes = sb.check_model_file(model_dir / 'SMPLX_NEUTRAL.npz')
  v = shapes['v_template'][0]
  assert v >= 9930  # smplx's extra-joint vertex table needs no patch
  assert shapes['shapedirs'] == (v, 3, 400) and shapes['posedirs'] == (v, 3, 486)
  assert shapes['J_regressor'] == (55, v) and shapes['weights'] == (v, 55)


def test_loads_and_poses(body, skel):
  assert body.genders == ('neutral', 'male') and body.name == 'smplx'
  assert body.faces.dtype == np.int32 and body.faces.max() == body.num_vertices - 1
  rng = np.random.default_rng(0)
  t = 3
  pose = sb.SmplxPose(global_orient=0.1 * rng.standard_normal((t, 3)),
                      body_pose=0.2 * rng.standard_normal((t, 63)),
                      left_hand_pose=np.zeros((t, 45)), right_hand_pose=np.zeros((t, 45)),
                      jaw_pose=np.zeros((t, 3)), leye_pose=np.zeros((t, 3)),
                      reye_pose=np.zeros((t, 3)), transl=np.zeros((t, 3)))
  fr = body.pose(sb.SmplxSubject('male', (1.0, -0.5)), pose)
  assert fr.vertices.shape == (t, body.num_vertices, 3) and fr.vertices.dtype == np.float32
  assert fr.markers.shape == (t, 63, 3) and fr.markers.dtype == np.float32
  assert fr.marker_names == tuple(skel.marker_names)
  assert np.all(np.isfinite(fr.vertices)) and np.all(np.isfinite(fr.markers))
  # Shape matters: beta 0 scales the stand-in (3 % per unit).
  tall = np.ptp(body.pose(
      sb.SmplxSubject('neutral', (1.0,)), sb.SmplxPose.rest(1)).vertices[0, :, 1])
  base_h = np.ptp(body.pose(sb.SmplxSubject('neutral'), sb.SmplxPose.rest(1)).vertices[0, :, 1])
  assert tall / base_h == pytest.approx(1.03, abs=0.002)


def test_long_sequences_are_posed_in_chunks(body):
  t = sb.POSE_CHUNK + 1
  rng = np.random.default_rng(2)
  pose = sb.SmplxPose.from_amass(0.2 * rng.standard_normal((t, 165)),
                                 rng.standard_normal((t, 3)), up_axis='y')
  subject = sb.SmplxSubject('neutral', (0.3, 0.1))
  fr = body.pose(subject, pose)
  last = body.pose(subject, sb.SmplxPose.from_amass(
      np.concatenate([pose.global_orient, pose.body_pose, pose.jaw_pose, pose.leye_pose,
                      pose.reye_pose, pose.left_hand_pose, pose.right_hand_pose], 1)[-1:],
      pose.transl[-1:], up_axis='y'))
  np.testing.assert_allclose(fr.vertices[-1], last.vertices[0], atol=1e-5)


def test_rest_pose_world_frame_and_markers(body):
  fr = body.pose(sb.SmplxSubject(), sb.SmplxPose.rest(1), np.zeros((1, 3)))
  m = markers_of(fr)
  assert m['FHEAD'][0] > m['BHEAD'][0] and m['RTOE'][0] > m['RCAL'][0]
  for name in mk.SIDE_LANDMARKS + ('HJC', 'KJC', 'AJC', 'SJC', 'EJC', 'WJC'):
    assert m['R' + name][2] > 0.02 and m['L' + name][2] < -0.02, name
    np.testing.assert_allclose(m['L' + name] * [1, 1, -1], m['R' + name], atol=1e-4,
                               err_msg=name)
  assert max(m, key=lambda n: m[n][1]) == 'HEAD_TOP'
  # SMPL-X rest = T-pose: wrists level with the shoulders, far lateral.
  assert abs(m['RWJC'][1] - m['RSJC'][1]) < 0.03 and m['RWJC'][2] > 0.6
  for s in 'RL':
    assert m[s + 'HJC'][1] > m[s + 'KJC'][1] > m[s + 'AJC'][1]
    assert abs(m[s + 'LFC'][2]) > abs(m[s + 'MFC'][2])
    assert m[s + 'ASI'][0] > m[s + 'HJC'][0] and m[s + 'ASI'][1] > m[s + 'HJC'][1]
    # T-pose arm: lateral epicondyle up, radial styloid forward, hand dorsum up.
    assert m[s + 'LEL'][1] > m[s + 'MEL'][1]
    assert m[s + 'WRA'][0] > m[s + 'WRB'][0]
    assert m[s + 'MCP2'][1] > m[s + 'WJC'][1] - 0.01
  # The pelvis joint is the root: at the origin here.
  np.testing.assert_allclose(fr.root_translation, 0.0)


def test_zero_pose_retargeted(body, skel):
  subject = sb.SmplxSubject('male', (0.5,))
  fr = body.pose_motion(subject, np.asarray(skel.default_coordinates)[None])
  m = markers_of(fr)
  assert abs(fr.vertices[0, :, 1].min()) < 0.003
  for s in 'RL':
    arm = m[s + 'EJC'] - m[s + 'SJC']
    assert np.degrees(np.arccos(-arm[1] / np.linalg.norm(arm))) < 8.0  # arms hang
    leg = m[s + 'AJC'] - m[s + 'HJC']
    assert np.degrees(np.arccos(-leg[1] / np.linalg.norm(leg))) < 6.0
  assert m['FHEAD'][0] > m['BHEAD'][0]
  cal = body.calibration(subject)
  assert np.degrees(cal.q_rest[skel.coordinate_index('arm_add_r')]) == pytest.approx(-90, abs=8)


def test_retarget_knee_and_shoulder(body, skel):
  q = np.tile(np.asarray(skel.default_coordinates), (3, 1))
  q[1, skel.coordinate_index('knee_angle_r')] = q[1, skel.coordinate_index('knee_angle_r_beta')] \
      = np.radians(60)
  q[2, skel.coordinate_index('arm_add_l')] = np.radians(-45)
  subject = sb.SmplxSubject('neutral')
  poses, roots = body.retarget(subject, q)
  assert poses.body_pose.shape == (3, 63) and poses.up_axis == 'y'
  np.testing.assert_allclose(poses.left_hand_pose, 0.0)
  fr = body.pose(subject, poses, roots)
  _, _, model = rt.project_fk(q, skel)
  names = list(skel.marker_names)

  def knee(m):
    a, b = m[names.index('RKJC')] - m[names.index('RHJC')], m[names.index('RAJC')] - m[names.index('RKJC')]
    return np.degrees(np.arctan2(a[0] * b[1] - a[1] * b[0], a[0] * b[0] + a[1] * b[1]))

  def abduction(m):
    v = m[names.index('LEJC')] - m[names.index('LSJC')]
    return np.degrees(np.arctan2(abs(v[2]), -v[1]))

  mesh = fr.markers.astype(np.float64)
  assert knee(mesh[1]) - knee(mesh[0]) == pytest.approx(knee(model[1]) - knee(model[0]), abs=3)
  assert abduction(mesh[2]) - abduction(mesh[0]) == pytest.approx(
      abduction(model[2]) - abduction(model[0]), abs=4)
  # The pelvis joint goes where retarget put it.
  np.testing.assert_allclose(fr.root_translation, roots)


def test_amass_arrays_and_z_up_frame(body):
  t = 2
  poses = np.zeros((t, 165))
  poses[:, 0:3] = [np.pi / 2, 0.0, 0.0]  # y-up body into AMASS's z-up world
  poses[:, 3:66] = 0.01
  poses[:, 66:69] = 0.02
  poses[:, 69:75] = 0.03
  poses[:, 75:120] = 0.04
  poses[:, 120:165] = 0.05
  trans = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 1.0]])
  p = sb.SmplxPose.from_amass(poses, trans)
  assert p.up_axis == 'z'
  np.testing.assert_allclose(p.body_pose, 0.01)
  np.testing.assert_allclose(p.jaw_pose, 0.02)
  np.testing.assert_allclose(np.concatenate([p.leye_pose, p.reye_pose], 1), 0.03)
  np.testing.assert_allclose(p.left_hand_pose, 0.04)
  np.testing.assert_allclose(p.right_hand_pose, 0.05)
  split = sb.SmplxPose.from_arrays({'root_orient': poses[:, :3], 'pose_body': poses[:, 3:66],
                                    'pose_hand': poses[:, 75:], 'trans': trans})
  np.testing.assert_allclose(split.right_hand_pose, 0.05)
  np.testing.assert_allclose(split.jaw_pose, 0.0)
  # A flat (zero) body pose stood up by the root orientation: upright and facing +x in the
  # world frame; AMASS translation (x, y, z)_mocap -> (-y, z, -x)_world.
  flat = sb.SmplxPose.from_amass(np.concatenate([poses[:, :3], np.zeros((t, 162))], 1), trans)
  fr = body.pose(sb.SmplxSubject(), flat)
  m = markers_of(fr)
  assert m['HEAD_TOP'][1] - m['RAJC'][1] > 1.4
  assert m['FHEAD'][0] > m['BHEAD'][0] + 0.1 and m['RASI'][2] > m['LASI'][2]
  shift = fr.markers[1].mean(0) - fr.markers[0].mean(0)
  np.testing.assert_allclose(shift, [0.0, 0.0, -1.0], atol=1e-5)
  # The same pose in the y-up frame: the body lies along the world's -x... i.e. not upright.
  lying = body.pose(sb.SmplxSubject(), sb.SmplxPose(**{
      k: getattr(flat, k) for k in ('global_orient', 'body_pose', 'left_hand_pose',
                                    'right_hand_pose', 'jaw_pose', 'leye_pose', 'reye_pose',
                                    'transl')}, up_axis='y'))
  assert np.ptp(lying.vertices[0, :, 1]) < 0.5


def test_pose_validation():
  with pytest.raises(ValueError, match=r'SmplxPose.body_pose must have shape \(T, 63\)'):
    sb.SmplxPose(**{k: np.zeros((2, 3)) for k in ('global_orient', 'jaw_pose', 'leye_pose',
                                                  'reye_pose', 'transl')},
                 body_pose=np.zeros((2, 60)), left_hand_pose=np.zeros((2, 45)),
                 right_hand_pose=np.zeros((2, 45)))
  with pytest.raises(ValueError, match=r'poses must have shape \(T, 165\)'):
    sb.SmplxPose.from_amass(np.zeros((2, 156)), np.zeros((2, 3)))
  with pytest.raises(ValueError, match="gender must be one of"):
    sb.SmplxSubject('other')


def test_sample_subject_deterministic(body):
  a = body.sample_subject(np.random.default_rng(3))
  assert a == body.sample_subject(np.random.default_rng(3))
  assert a.gender == 'male'  # the only gendered file present
  assert len(a.betas) == sb.SAMPLED_BETAS and max(map(abs, a.betas)) <= sb.BETA_TRUNCATION


# ---- missing and wrong files ----------------------------------------------------------------------

def _missing(path):
  return (f'SMPL-X model file not found: {path}. The SMPL-X body model is licensed and must '
          'be downloaded by hand: register at https://smpl-x.is.tue.mpg.de, download '
          '"SMPL-X v1.1 (NPZ+PKL)" and put SMPLX_NEUTRAL.npz, SMPLX_MALE.npz, '
          f'SMPLX_FEMALE.npz into {path.parent} (for the TFDS builder: <manual_dir>/smplx/).')


def test_missing_files(tmp_path, model_dir, body):
  assert issubclass(sb.SmplxModelFilesError, base.ManualFilesError)
  empty = tmp_path / 'smplx'
  with pytest.raises(sb.SmplxModelFilesError) as e:
    sb.SmplxBody(empty)
  assert str(e.value) == _missing(empty / 'SMPLX_NEUTRAL.npz')
  with pytest.raises(base.ManualFilesError) as e:
    body.pose(sb.SmplxSubject('female'), sb.SmplxPose.rest(1))
  assert str(e.value) == _missing(model_dir / 'SMPLX_FEMALE.npz')


def _bad(path):
  return (f'{path} is not an SMPL-X model file in .npz format (as downloaded from '
          'https://smpl-x.is.tue.mpg.de, "SMPL-X v1.1 (NPZ+PKL)"; use the .npz, not the .pkl '
          'files)')


def test_wrong_format_files(tmp_path, model_dir):
  folder = tmp_path / 'smplx'
  folder.mkdir()
  path = folder / 'SMPLX_NEUTRAL.npz'
  path.write_text('not a model')
  with pytest.raises(sb.SmplxModelFilesError) as e:
    sb.SmplxBody(folder)
  assert str(e.value) == _bad(path) + ': not an npz archive.'
  good = dict(np.load(model_dir / 'SMPLX_NEUTRAL.npz'))
  np.savez(path, **{k: v for k, v in good.items() if k not in ('posedirs', 'weights')})
  with pytest.raises(sb.SmplxModelFilesError) as e:
    sb.SmplxBody(folder)
  assert str(e.value) == _bad(path) + ": missing keys ['posedirs', 'weights']."
  good['J_regressor'] = good['J_regressor'][:24]
  np.savez(path, **good)
  with pytest.raises(sb.SmplxModelFilesError) as e:
    sb.check_model_file(path)
  v = good['v_template'].shape[0]
  assert str(e.value) == _bad(path) + f": key 'J_regressor' has shape (24, {v}), expected (55, 'V')."


def test_small_standin_loads_inside_the_vertex_id_patch(tmp_path, skel):
  from smplx import vertex_ids  # pylint: disable=g-import-not-at-top
  before = dict(vertex_ids.vertex_ids['smplx'])
  st.write_standin_model(tmp_path, 'neutral', resolution=0.5)
  # Too coarse for the landmark search: give marker vertices explicitly (any ids).
  small = sb.SmplxBody(tmp_path, marker_vertices={n: i for i, n in enumerate(mk.SURFACE_LANDMARKS)})
  assert small.num_vertices < 9930
  with st.patched_smplx_vertex_ids(small.num_vertices):
    small.load('neutral')
  assert vertex_ids.vertex_ids['smplx'] == before  # restored
  fr = small.pose(sb.SmplxSubject(), sb.SmplxPose.rest(2))
  assert fr.vertices.shape == (2, small.num_vertices, 3)
  np.testing.assert_allclose(fr.marker('RASI'), fr.vertices[:, mk.SURFACE_LANDMARKS.index('RASI')])
  del skel


def test_rest_rotation_convention():
  # SMPL-X rest frames are the native axes; the world mapping is a proper rotation
  # sending the model's up (+y) to world up and its facing direction (+z) to +x.
  for n in (sb.SMPLX_Y_UP_TO_WORLD, sb.SMPLX_Z_UP_TO_WORLD):
    base.check_rotation(n, 'mapping')
  np.testing.assert_allclose(sb.SMPLX_Y_UP_TO_WORLD @ [0, 1, 0], [0, 1, 0])
  np.testing.assert_allclose(sb.SMPLX_Y_UP_TO_WORLD @ [0, 0, 1], [1, 0, 0])
  np.testing.assert_allclose(sb.SMPLX_Y_UP_TO_WORLD @ [1, 0, 0], [0, 0, -1])  # left -> -z
  up = Rotation.from_rotvec([np.pi / 2, 0, 0]).as_matrix()  # AMASS: y-up body into z-up
  np.testing.assert_allclose(sb.SMPLX_Z_UP_TO_WORLD @ up, sb.SMPLX_Y_UP_TO_WORLD, atol=1e-12)

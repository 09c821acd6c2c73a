"""Tests of the anny body backend: posing, world frame, subjects, virtual markers.

One anny model per process (`anny_body.anny_model()` is cached); the first build in a
fresh environment costs ~60 s (anny's own disk cache), later ones ~2 s.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from banet_jax.skeleton.models import project_skeleton
from odah_tfds.body import anny_body as ab
from odah_tfds.body import markers as mk


@pytest.fixture(scope='module')
def body():
  return ab.AnnyBody()


@pytest.fixture(scope='module')
def skel():
  return project_skeleton()


@pytest.fixture(scope='module')
def rest(body):
  return body.rest_frames(ab.AnnySubject())


def winding_number(vertices, faces, point):
  """Generalised winding number of a closed triangle mesh around `point` (1 inside)."""
  a, b, c = (vertices[faces[:, k]] - point for k in range(3))
  la, lb, lc = (np.linalg.norm(x, axis=1) for x in (a, b, c))
  num = np.einsum('ij,ij->i', a, np.cross(b, c))
  den = (la * lb * lc + np.einsum('ij,ij->i', a, b) * lc + np.einsum('ij,ij->i', b, c) * la
         + np.einsum('ij,ij->i', c, a) * lb)
  return float(np.sum(np.arctan2(num, den)) / (2 * np.pi))


def markers_of(frames, k=0):
  return {n: frames.markers[k, i].astype(np.float64) for i, n in enumerate(frames.marker_names)}


def test_pose_shapes_and_dtypes(body, skel):
  rng = np.random.default_rng(0)
  poses = ab.AnnyPose(0.1 * rng.standard_normal((3, len(body.bone_labels), 3)))
  roots = np.array([[0.0, 1.0, 0.0], [0.5, 1.0, 0.0], [1.0, 1.0, -0.2]])
  fr = body.pose(ab.AnnySubject(), poses, roots)
  assert fr.vertices.shape == (3, ab.ANNY_NUM_VERTICES, 3) and fr.vertices.dtype == np.float32
  assert fr.markers.shape == (3, 63, 3) and fr.markers.dtype == np.float32
  assert fr.marker_names == tuple(skel.marker_names) == body.marker_names
  assert fr.faces.dtype == np.int32 and fr.faces.shape == (27420, 3)
  assert fr.faces.min() == 0 and fr.faces.max() == ab.ANNY_NUM_VERTICES - 1
  assert np.all(np.isfinite(fr.vertices)) and np.all(np.isfinite(fr.markers))
  assert fr.native_poses is poses and fr.body_model == 'anny'
  np.testing.assert_allclose(fr.root_translation, roots)
  # The root translation moves the whole body rigidly.
  moved = body.pose(ab.AnnySubject(), ab.AnnyPose(poses.rotvecs[:1]), np.zeros((1, 3)))
  np.testing.assert_allclose(fr.vertices[0], moved.vertices[0] + roots[0], atol=1e-5)


def test_long_sequences_are_posed_in_chunks(body):
  rng = np.random.default_rng(1)
  t = ab.POSE_CHUNK + 2
  poses = ab.AnnyPose(0.1 * rng.standard_normal((t, len(body.bone_labels), 3)))
  subject = ab.AnnySubject(muscle=0.7)
  fr = body.pose(subject, poses)
  last = body.pose(subject, ab.AnnyPose(poses.rotvecs[-1:]))
  np.testing.assert_allclose(fr.vertices[-1], last.vertices[0], atol=1e-6)
  np.testing.assert_allclose(fr.markers[-1], last.markers[0], atol=1e-6)


def test_pose_rejects_bad_input(body):
  with pytest.raises(ValueError, match=r'rotvecs must have shape \(T, 104, 3\)'):
    body.pose(ab.AnnySubject(), ab.AnnyPose(np.zeros((2, 10, 3))))
  with pytest.raises(ValueError, match='root_translation has 1 frames'):
    body.pose(ab.AnnySubject(), ab.AnnyPose.rest(2), np.zeros((1, 3)))
  with pytest.raises(TypeError, match='AnnySubject'):
    body.pose({'height': 0.5}, ab.AnnyPose.rest(1))
  with pytest.raises(ValueError, match=r'must lie in \[0, 1\]'):
    ab.AnnySubject(height=1.5)


def test_rest_pose_world_frame(rest):
  m = markers_of(rest)
  # Faces +x: front of the head, toes and sternum ahead of the back of the head, heels, spine.
  assert m['FHEAD'][0] > m['BHEAD'][0] + 0.12
  for s in 'RL':
    assert m[s + 'TOE'][0] > m[s + 'CAL'][0] + 0.12
    assert m[s + 'ASI'][0] > m[s + 'PSI'][0] + 0.05
  assert m['STRN'][0] > m['T10'][0] + 0.1 and m['CLAV'][0] > m['C7'][0] + 0.05
  # Right = +z for every right-side marker, mirrored on the left.
  for name in mk.SIDE_LANDMARKS + ('HJC', 'KJC', 'AJC', 'SJC', 'EJC', 'WJC'):
    assert m['R' + name][2] > 0.02 and m['L' + name][2] < -0.02, name
  # y up: the vertex of the head is the highest marker, the heels among the lowest.
  ys = {n: p[1] for n, p in m.items()}
  assert max(ys, key=ys.get) == 'HEAD_TOP'
  assert m['HEAD_TOP'][1] == pytest.approx(rest.vertices[0, :, 1].max(), abs=0.01)


def test_rest_markers_on_expected_regions(body, rest):
  m = markers_of(rest)
  verts = rest.vertices[0].astype(np.float64)
  for s in 'RL':
    # ASIS anterior of and above the hip joint centre; PSIS behind it.
    assert m[s + 'ASI'][0] > m[s + 'HJC'][0] + 0.03
    assert 0.03 < m[s + 'ASI'][1] - m[s + 'HJC'][1] < 0.15
    assert m[s + 'PSI'][0] < m[s + 'HJC'][0] - 0.03
    # Lateral markers further from the midline than their medial partners.
    for lat, med in (('LFC', 'MFC'), ('LMAL', 'MMAL'), ('MT5', 'MT1')):
      assert abs(m[s + lat][2]) > abs(m[s + med][2]) + 0.02, (s, lat)
    assert abs(m[s + 'GTR'][2]) > abs(m[s + 'HJC'][2]) + 0.03
    # Joint centres in proximal-distal order down the leg; KJC between HJC and AJC.
    assert m[s + 'HJC'][1] > m[s + 'KJC'][1] > m[s + 'AJC'][1] > m[s + 'CAL'][1] - 0.05
    thigh, shank = m[s + 'KJC'] - m[s + 'HJC'], m[s + 'AJC'] - m[s + 'KJC']
    assert np.dot(thigh, shank) > 0.9 * np.linalg.norm(thigh) * np.linalg.norm(shank)
    # Heel posterior and low; hallux the most anterior foot marker.
    assert m[s + 'CAL'][0] < m[s + 'AJC'][0] - 0.03 and m[s + 'CAL'][1] < m[s + 'AJC'][1]
    assert m[s + 'HLX'][0] == max(m[s + n][0] for n in ('CAL', 'TOE', 'MT1', 'MT5', 'HLX'))
    # Arm chain: acromion above the shoulder JC, then elbow, wrist, hand.
    assert m[s + 'ACR'][1] > m[s + 'SJC'][1]
    arm = [m[s + n] for n in ('SJC', 'EJC', 'WJC')]
    assert abs(arm[1][2]) > abs(arm[0][2]) and abs(arm[2][2]) > abs(arm[1][2])
    assert np.linalg.norm(m[s + 'MCP2'] - m[s + 'WJC']) < 0.15
    assert m[s + 'FHD'][0] > m[s + 'HEAD'][0] > m[s + 'BHD'][0]
  # Trunk midline markers: on the midline, CLAV above STRN, C7 above T10.
  for n in ('C7', 'CLAV', 'STRN', 'T10', 'FHEAD', 'BHEAD', 'HEAD_TOP'):
    assert abs(m[n][2]) < 0.01, n
  assert m['CLAV'][1] > m['STRN'][1] and m['C7'][1] > m['T10'][1]
  # Left/right mirror symmetry (the anny mesh is symmetric).
  for name in mk.SIDE_LANDMARKS + ('HJC', 'KJC', 'AJC', 'SJC', 'EJC', 'WJC'):
    np.testing.assert_allclose(m['L' + name] * [1, 1, -1], m['R' + name], atol=0.005,
                               err_msg=name)
  # Joint centres lie inside the body; surface markers are mesh vertices.
  body_faces = body.faces
  for s in 'RL':
    for jc in ('HJC', 'KJC', 'AJC', 'SJC', 'EJC', 'WJC'):
      assert winding_number(verts, body_faces, m[s + jc]) > 0.5, s + jc
  # Surface landmarks are mesh vertices at rest; the bony ones are carried by their
  # body's bone from there.
  for name, definition in body.marker_definitions.items():
    if name in mk.SURFACE_LANDMARKS:
      bony = (name[1:] if name[0] in 'RL' and name not in mk.MIDLINE_LANDMARKS else name)
      kind = mk.BoneVertexMarker if bony in mk.BONY_SEGMENTS else mk.VertexMarker
      assert isinstance(definition, kind), name
      np.testing.assert_allclose(m[name], verts[definition.vertex], atol=1e-5, err_msg=name)
  for s in 'RL':
    for jc, joint in mk.RIG_JOINT_CENTRES.items():
      assert body.marker_definitions[s + jc] == mk.JointMarker(f'{joint}_{s.lower()}')


def test_bony_landmarks_ride_on_their_bones(body):
  """A bent elbow and knee: the epicondyles stay fixed on the humerus / femur (their
  skin, skinned to the forearm / shank near the joint, would turn with it), the
  styloids on the forearm's twist bone, the pelvis landmarks on the pelvis."""
  subject = ab.AnnySubject()
  rest = body.rest_frames(subject)
  rotvecs = np.zeros((1, len(body.bone_labels), 3))
  rotvecs[0, body.bone_labels.index('lowerarm01.R')] = [1.5, 0.0, 0.0]
  rotvecs[0, body.bone_labels.index('lowerleg01.L')] = [1.2, 0.0, 0.0]
  rotvecs[0, body.bone_labels.index('spine03')] = [0.6, 0.0, 0.0]
  bent = body.pose(subject, ab.AnnyPose(rotvecs))
  a, b = markers_of(rest), markers_of(bent)
  for p, q in (('RLEL', 'RMEL'), ('RLEL', 'RSJC'), ('LLFC', 'LMFC'), ('LLFC', 'LHJC'),
               ('RASI', 'RPSI'), ('LASI', 'RHJC'), ('RWRA', 'RWRB')):
    assert np.linalg.norm(b[p] - b[q]) == pytest.approx(np.linalg.norm(a[p] - a[q]), abs=1e-4)
  # The skin vertex itself moved off the humerus with the forearm.
  v = body.marker_definitions['RMEL'].vertex
  skin_gap = np.linalg.norm(bent.vertices[0, v] - b['RSJC'])
  assert abs(skin_gap - np.linalg.norm(rest.vertices[0, v] - a['RSJC'])) > 0.01


def test_marker_vertices_follow_their_segments(body):
  regions = ab.check_marker_regions(body)
  expected = {'ASI': 'pelvis', 'PSI': 'pelvis', 'CAL': 'foot', 'TOE': 'foot', 'MT1': 'foot',
              'MT5': 'foot', 'HLX': 'toes', 'MCP2': 'hand', 'MCP5': 'hand', 'FHD': 'head',
              'BHD': 'head', 'HEAD': 'head', 'GTR': 'femur'}
  for s, side in (('R', '_r'), ('L', '_l')):
    for name, region in expected.items():
      want = region if region in ('pelvis', 'head') else region + side
      assert regions[s + name] == want, (s + name, regions[s + name])
    assert regions[s + 'LFC'] in ('femur' + side, 'tibia' + side)
    assert regions[s + 'LEL'] in ('humerus' + side, 'forearm' + side)
  for n in ('C7', 'CLAV', 'STRN', 'T10'):
    assert regions[n] == 'torso'


def test_markers_valid_for_other_phenotypes(body):
  """The frozen vertex ids land on the same anatomy for extreme phenotypes."""
  for subject in (ab.AnnySubject(gender=1.0, weight=1.0, muscle=0.0, height=0.0, age=0.9),
                  ab.AnnySubject(gender=0.0, weight=0.0, muscle=1.0, height=1.0, age=0.6,
                                 proportions=1.0)):
    m = markers_of(body.rest_frames(subject))
    for s in 'RL':
      assert m[s + 'ASI'][0] > m[s + 'HJC'][0] and m[s + 'ASI'][1] > m[s + 'HJC'][1]
      assert m[s + 'HJC'][1] > m[s + 'KJC'][1] > m[s + 'AJC'][1]
      assert abs(m[s + 'LFC'][2]) > abs(m[s + 'MFC'][2])
      assert m[s + 'TOE'][0] > m[s + 'CAL'][0]
    assert max(m, key=lambda n: m[n][1]) == 'HEAD_TOP'


def test_sample_subject_is_deterministic_and_in_range(body):
  a = body.sample_subject(np.random.default_rng(123))
  b = body.sample_subject(np.random.default_rng(123))
  c = body.sample_subject(np.random.default_rng(124))
  assert a == b and a != c
  for s in (a, c):
    assert s.sex in ('male', 'female')
    assert ab.AGE_YEARS_RANGE[0] <= s.age_years <= ab.AGE_YEARS_RANGE[1]
    lo, hi = ab.GENDER_RANGE[s.sex]
    assert lo <= s.gender <= hi
    assert s.age == pytest.approx(ab.years_to_anny_age(s.age_years))
    assert 1.3 < s.stature_m < 2.05
    # The solved height phenotype gives the mesh the subject's stature.
    assert body.stature(s) == pytest.approx(s.stature_m, abs=0.005)
  with pytest.raises(TypeError, match='numpy Generator'):
    body.sample_subject(0)


def test_sampled_statures_follow_the_distribution(body):
  rng = np.random.default_rng(7)
  subjects = [body.sample_subject(rng) for _ in range(12)]
  for s in subjects:
    mean = ab.stature_mean(s.sex, s.age_years)
    sd = ab.STATURE_SD[s.sex]
    # Within the truncation (or clipped to what anny reaches for these phenotypes).
    assert abs(s.stature_m - mean) <= ab.STATURE_TRUNCATION_SD * sd + 1e-6 or \
        s.height in (0.0, 1.0)


def test_zero_pose_stands_on_floor_with_subject_height(body, skel):
  q0 = np.asarray(skel.default_coordinates)[None]
  for subject in (ab.AnnySubject(), body.sample_subject(np.random.default_rng(5))):
    fr = body.pose_motion(subject, q0)
    v = fr.vertices[0]
    assert abs(v[:, 1].min()) < 0.003
    # Both feet carry the weight: each foot's lowest point is on the floor.
    for s in 'RL':
      near = np.linalg.norm(v[:, [0, 2]] - fr.marker(s + 'AJC')[0, [0, 2]], axis=1) < 0.15
      assert abs(v[near, 1].min()) < 0.006, s
    stature = body.stature(subject)
    assert v[:, 1].max() == pytest.approx(stature, abs=0.015)
    m = markers_of(fr)
    assert m['HEAD_TOP'][1] == pytest.approx(stature, abs=0.02)
    # Anatomical posture: legs vertical, arms hanging, facing +x.
    for s in 'RL':
      leg = m[s + 'AJC'] - m[s + 'HJC']
      assert np.degrees(np.arccos(-leg[1] / np.linalg.norm(leg))) < 6.0
      arm = m[s + 'EJC'] - m[s + 'SJC']
      assert np.degrees(np.arccos(-arm[1] / np.linalg.norm(arm))) < 10.0
    assert m['RTOE'][0] > m['RCAL'][0] and m['FHEAD'][0] > m['BHEAD'][0]


def test_texture_data(body):
  paths = ab.anny_texture_paths()
  assert paths['uv_layout'].is_file() and paths['body_parts_segmentation'].is_file()
  assert paths['sss'].is_file() and 'face' in paths['skin_masks']
  assert all(p.is_file() for p in paths['skin_masks'].values())
  uv, fuv = body.texture_coordinates, body.face_texture_coordinate_indices
  assert uv.ndim == 2 and uv.shape[1] == 2 and uv.min() >= 0.0 and uv.max() <= 1.0
  assert fuv.shape == body.faces.shape and fuv.max() < len(uv)


def test_age_mapping_matches_the_wheel():
  import torch  # pylint: disable=g-import-not-at-top
  data = torch.load(ab.anny_data_dir() / 'shape_calibration' / 'boys.pth', weights_only=True)
  mapping = data['morphological_age_mapping']
  np.testing.assert_allclose(mapping['anny_age_anchors'].numpy(), ab.ANNY_AGE_ANCHORS, atol=1e-6)
  np.testing.assert_allclose(mapping['morphological_age_anchors'].numpy(), ab.ANNY_AGE_YEARS,
                             atol=1e-6)
  assert ab.anny_age_to_years(ab.years_to_anny_age(40.0)) == pytest.approx(40.0)


def test_subject_is_hashable_for_calibration_cache(body):
  s = ab.AnnySubject(weight=0.3)
  assert body.calibration(s) is body.calibration(dataclasses.replace(s))


@pytest.mark.slow
def test_frozen_marker_vertices_match_the_procedure(body):
  assert ab.compute_anny_marker_vertices(body) == ab.ANNY_MARKER_VERTICES


def test_marker_definition_options():
  """`markers.marker_definitions` options and `evaluate_markers` on hand-made data."""
  ids = {n: k for k, n in enumerate(mk.SURFACE_LANDMARKS)}
  plain = mk.marker_definitions(ids)
  assert plain['RKJC'] == mk.MidpointMarker('RLFC', 'RMFC')
  assert plain['RLEL'] == mk.VertexMarker(ids['RLEL'])
  defs = mk.marker_definitions(ids, hip=('hip_r', 'hip_l'), joint_centres='rig', carry='bony')
  assert defs['LWJC'] == mk.JointMarker('wrist_l')
  assert defs['RLEL'] == mk.BoneVertexMarker(ids['RLEL'], 'humerus_r')
  assert defs['LASI'] == mk.BoneVertexMarker(ids['LASI'], 'pelvis')
  assert defs['STRN'] == mk.BoneVertexMarker(ids['STRN'], 'torso')
  assert defs['RGTR'] == mk.VertexMarker(ids['RGTR'])  # soft: stays a skin vertex
  for bad in (dict(joint_centres='bones'), dict(carry='all')):
    with pytest.raises(ValueError, match='must be'):
      mk.marker_definitions(ids, **bad)
  t = 2
  vertices = np.random.default_rng(0).normal(size=(t, len(ids), 3))
  joints = {f'{j}_{s}': np.full((t, 3), k + 10.0 * (s == 'l'))
            for k, j in enumerate(('hip', 'knee', 'ankle', 'shoulder', 'elbow', 'wrist'))
            for s in ('r', 'l')}
  carried = {key: np.full((t, 3), float(key[0])) for key in mk.carried_vertices(defs)}
  names = ['RLEL', 'RKJC', 'RGTR', 'LHJC']
  out = mk.evaluate_markers(defs, names, vertices, joints, carried=carried)
  np.testing.assert_array_equal(out[:, 0], float(ids['RLEL']))
  np.testing.assert_array_equal(out[:, 1], joints['knee_r'])
  np.testing.assert_array_equal(out[:, 2], vertices[:, ids['RGTR']])
  np.testing.assert_array_equal(out[:, 3], joints['hip_l'])
  with pytest.raises(KeyError, match='carried'):
    mk.evaluate_markers(defs, names, vertices, joints)

"""SMPL-X + AMASS end to end on stand-in files: labels, make_subjects, generation, builder.

No licensed file is used: the SMPL-X model is `smplx_standin`'s tube humanoid, and the
AMASS sequences are written by `amass_standin` (project-coordinate motions -- smooth
analytic ones here -- retargeted onto the stand-in, stored in the stage-II SMPL-X format,
z-up, 120 fps). So the IK coordinates of an AMASS clip can be compared with the
coordinates that made the file.

The stand-in is built at full resolution (V = 11,216): the landmark search needs it
(at resolution <= 0.8 it finds no vertex for some landmark), and posing it costs ~10 ms
per frame. IK runs through OpenSim here (no JAX IK compilation in this process);
`generate_subject` (JAX IK, rendering) runs in a TF-free worker process.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from banet_jax.skeleton.models import project_skeleton
from odah_tfds import amass_subjects, generate, labels, make_subjects
from odah_tfds.body import base
from odah_tfds.body import markers as mk
from odah_tfds.body import smplx_body as sb
from odah_tfds.body import smplx_standin as st
from odah_tfds.motions import amass_standin

ROOT = pathlib.Path(__file__).resolve().parents[1]
# OpenSim IK at 1e-8 (labels default 1e-9): a few seconds per clip, within ~1 deg.
_CONFIG = labels.LabelConfig(clip_frames=16, clips_per_subject=1, ik='opensim',
                             opensim_accuracy=1e-8)
_FEMALE = sb.SmplxSubject('female', (0.8, -0.5))
_MALE = sb.SmplxSubject('male', (-0.6, 0.4))


def _motion(kind: str, fps: float = 120.0, frames: int = 80, heading_deg: float = 0.0):
  """A smooth project-coordinate motion inside the joint ranges (1 Hz cycles): 'walk'
  (legs and arms swing, the pelvis moves 0.9 m/s along its heading), 'squat', 'reach'."""
  from odah_tfds import motions  # pylint: disable=g-import-not-at-top
  skel = project_skeleton()
  names = list(skel.coordinate_names)
  t = np.arange(frames) / fps
  w, a = 2 * np.pi * t, np.radians(heading_deg)
  down = 0.5 * (1 - np.cos(w))  # 0 -> 1 -> 0
  q = np.tile(np.asarray(skel.default_coordinates, np.float64), (frames, 1))
  values = {'pelvis_rotation': a}
  if kind == 'walk':
    values.update(hip_flexion_r=0.4 * np.sin(w), hip_flexion_l=-0.4 * np.sin(w),
                  knee_angle_r=0.3 * (1 + np.sin(w + 1)), knee_angle_l=0.3 * (1 - np.sin(w + 1)),
                  ankle_angle_r=0.15 * np.sin(w), ankle_angle_l=-0.15 * np.sin(w),
                  arm_flex_r=-0.3 * np.sin(w), arm_flex_l=0.3 * np.sin(w),
                  elbow_flex_r=0.5 + 0.2 * np.sin(w), elbow_flex_l=0.5 - 0.2 * np.sin(w),
                  lumbar_extension=-0.1 * np.sin(2 * w),
                  pelvis_tx=0.9 * t * np.cos(a), pelvis_tz=-0.9 * t * np.sin(a))
  elif kind == 'squat':
    values.update(hip_flexion_r=1.0 * down, hip_flexion_l=1.0 * down, knee_angle_r=1.4 * down,
                  knee_angle_l=1.4 * down, ankle_angle_r=0.3 * down, ankle_angle_l=0.3 * down,
                  arm_flex_r=1.2 * down, arm_flex_l=1.2 * down,
                  pelvis_ty=q[0, names.index('pelvis_ty')] - 0.3 * down)
  else:  # reach
    values.update(arm_flex_r=1.3 * down, elbow_flex_r=0.2 + 0.8 * (1 - down),
                  arm_add_l=-0.3 - 0.5 * down, lumbar_extension=-0.4 * down,
                  lumbar_rotation=0.3 * down, hip_flexion_r=0.3 * down)
  for name, value in values.items():
    q[:, names.index(name)] = value
  for side in 'rl':
    q[:, names.index(f'knee_angle_{side}_beta')] = q[:, names.index(f'knee_angle_{side}')]
  return motions.Motion(kind, fps, q, tuple(names))


@pytest.fixture(scope='module')
def made(tmp_path_factory):
  """A manual_dir with smplx/ (male, female stand-ins) and amass/ holding two people
  (AMASS-format files made from `_motion`s), and the motions by file."""
  import opensim  # pylint: disable=g-import-not-at-top
  opensim.Logger.setLevelString('error')
  folder = tmp_path_factory.mktemp('manual')
  for gender in ('male', 'female'):
    st.write_standin_model(folder / 'smplx', gender)
  body = sb.SmplxBody(folder / 'smplx')
  amass = folder / 'amass'
  files = {  # person 1 turned by 70 deg and away from the origin, as a capture is
      'DS/p1/walk_stageii.npz': (_FEMALE, _motion('walk', heading_deg=70.0), (1.5, -2.0)),
      'DS/p1/squat_stageii.npz': (_FEMALE, _motion('squat', frames=60), (0.0, 0.0)),
      'DS/p2/reach_stageii.npz': (_MALE, _motion('reach', frames=60, heading_deg=-140.0),
                                  (0.3, 0.2)),
      # Too short for a 16-frame clip at 60 fps.
      'DS/p2/short_stageii.npz': (_MALE, _motion('squat', frames=20), (0.0, 0.0)),
  }
  motions = {}
  for rel, (shape, motion, offset) in files.items():
    motions[rel] = amass_standin.write_standin_sequence(amass / rel, body, shape, motion,
                                                        offset=offset)
  return folder, motions


@pytest.fixture(scope='module')
def manual(made) -> pathlib.Path:
  return made[0]


@pytest.fixture(scope='module')
def body(manual):
  return sb.SmplxBody(manual / 'smplx')


@pytest.fixture(scope='module')
def subject(manual, body, tmp_path_factory):
  shape = amass_subjects.subject_shape(manual / 'amass' / 'DS' / 'p1' / 'walk_stageii.npz')
  return labels.make_subject(body, 'S000', np.random.default_rng(0),
                             tmp_path_factory.mktemp('subject'), _CONFIG, shape=shape)


# ---- SMPL-X markers: rig joint centres, bony landmarks carried by their joints ----------------

def test_joint_centres_are_the_rig_joints_and_bony_markers_ride_their_joints(body):
  defs = body.marker_definitions
  for side in 'RL':
    for jc, joint in mk.RIG_JOINT_CENTRES.items():
      assert defs[side + jc] == mk.JointMarker(f'{joint}_{side.lower()}')
  carried = {n for n, d in defs.items() if isinstance(d, mk.BoneVertexMarker)}
  assert len(carried) == 36 and {'RLEL', 'LMEL', 'RWRB', 'C7', 'RASI', 'LCAL'} <= carried
  assert isinstance(defs['RGTR'], mk.VertexMarker)  # soft landmarks stay skin vertices
  rng = np.random.default_rng(5)
  t = 3
  pose = sb.SmplxPose.from_amass(0.3 * rng.standard_normal((t, 165)),
                                 rng.standard_normal((t, 3)), up_axis='z')
  fr = body.pose(_MALE, pose)
  rest = body.pose(_MALE, sb.SmplxPose.rest(1))
  # The stand-in skins every vertex to one joint. A carried vertex skinned to its
  # carrying joint is exactly the skinned vertex; at rest every carried vertex is.
  weights = body.model_data('male')['weights']
  same = 0
  for name in carried:
    d = defs[name]
    i = body.marker_names.index(name)
    np.testing.assert_allclose(rest.markers[0, i], rest.vertices[0, d.vertex], atol=1e-5)
    segment, side = ((d.segment[:-2], d.segment[-1]) if d.segment[-2:] in ('_r', '_l')
                     else (d.segment, ''))
    carrier = {'r': 'right_', 'l': 'left_', '': ''}[side] + sb.SEGMENT_JOINTS[segment]
    if np.argmax(weights[d.vertex]) == sb.JOINT_NAMES.index(carrier):
      np.testing.assert_allclose(fr.markers[:, i], fr.vertices[:, d.vertex], atol=2e-5)
      same += 1
  assert same >= 25
  # Carried by the humerus, the lateral epicondyle keeps its distance to the shoulder
  # however the elbow bends.
  q = np.zeros((2, 165))
  q[:, :3] = [np.pi / 2, 0.0, 0.0]
  q[1, 3 + 3 * 18:3 + 3 * 19] = [0.0, -1.5, 0.0]  # right elbow (body joint 19 - 1)
  bent = body.pose(_MALE, sb.SmplxPose.from_amass(q, np.zeros((2, 3))))
  lel, sjc = (bent.markers[:, body.marker_names.index(n)] for n in ('RLEL', 'RSJC'))
  dist = np.linalg.norm(lel - sjc, axis=1)
  assert dist[0] == pytest.approx(dist[1], abs=1e-5)
  # The native placement puts the pelvis joint where native_root_translation says.
  placed = body.pose(_MALE, pose, body.native_root_translation(_MALE, pose))
  np.testing.assert_allclose(placed.vertices, fr.vertices, atol=1e-5)
  np.testing.assert_allclose(placed.markers, fr.markers, atol=1e-5)


# ---- AMASS clips labelled end to end ----------------------------------------------------------

def test_amass_placement_faces_x_from_the_origin_on_the_floor(manual, subject):
  from odah_tfds import motions  # pylint: disable=g-import-not-at-top
  clip = motions.load_amass_clip(manual / 'amass' / 'DS' / 'p1' / 'walk_stageii.npz', 60.0)
  frames, placement = labels.amass_frames(subject, clip, 5, 10)
  assert frames.num_frames == 10 and frames.vertices[..., 1].min() == pytest.approx(0, abs=1e-6)
  m = {n: frames.markers[:, i].astype(np.float64) for i, n in enumerate(frames.marker_names)}
  mid_asis = 0.5 * (m['RASI'] + m['LASI'])
  forward = mid_asis[0] - 0.5 * (m['RPSI'] + m['LPSI'])[0]
  assert np.degrees(abs(np.arctan2(forward[2], forward[0]))) < 10
  np.testing.assert_allclose(frames.root_translation[0, [0, 2]], 0.0, atol=1e-9)
  # The file turned the walk by 70 deg (+x towards -z) and moved it by (1.5, -2) m.
  assert placement['heading_deg'] == pytest.approx(-70, abs=1)
  assert placement['origin_m'][0] == pytest.approx(1.5 + 0.9 * 5 / 60 * np.cos(np.radians(70)),
                                                   abs=0.1)
  # Only placement changes: the native posing, moved rigidly, gives the same mesh.
  native = subject.body.pose(subject.shape, sb.SmplxPose.from_amass(
      clip.poses[5:15], clip.transl[5:15]))
  a = native.vertices.astype(np.float64) - native.vertices[:, :1]
  b = frames.vertices.astype(np.float64) - frames.vertices[:, :1]
  turn = Rotation.from_rotvec([0, np.radians(placement['heading_deg']), 0]).as_matrix()
  np.testing.assert_allclose(a @ turn.T, b, atol=2e-5)


def test_amass_clip_labels_end_to_end(made, manual, subject):
  root = manual / 'amass'
  source = root / 'DS' / 'p1' / 'walk_stageii.npz'
  clip = labels.make_amass_clip(subject, 'S000_00_amass', source, np.random.default_rng(3),
                                _CONFIG, amass_root=root)
  t = _CONFIG.clip_frames
  assert clip.coordinates.shape == (t, 39) and np.all(np.isfinite(clip.coordinates))
  assert clip.rms.max() < 0.015 and not clip.flagged.any()  # measured: ~0.5 cm
  assert clip.outside_limits == 0
  params = clip.motion.params
  assert clip.motion.family == 'amass' and params['source'] == 'DS/p1/walk_stageii.npz'
  assert params['source_fps'] == 120.0 and params['coordinates_source'] == 'ik'
  np.testing.assert_array_equal(clip.motion.coordinates, clip.coordinates)
  # The joint angles that made the file come back (120 -> 60 fps: every other frame).
  motion = made[1]['DS/p1/walk_stageii.npz']
  first = params['start_frame']
  truth = motion.coordinates[2 * first:2 * (first + t):2]
  names = list(motion.coordinate_names)
  for name in ('hip_flexion_r', 'hip_flexion_l', 'knee_angle_r', 'knee_angle_l',
               'ankle_angle_r', 'arm_flex_l', 'elbow_flex_r', 'elbow_flex_l',
               'lumbar_extension'):
    i = names.index(name)
    diff = np.degrees(clip.coordinates[:, i] - truth[:, i])
    assert np.abs(diff).max() < 4.0, (name, diff)
  # The record: the keys of every clip record, SMPL-X's native poses, AMASS provenance.
  record = {**labels.clip_record(subject, clip), **labels.clip_extras(subject, clip)}
  expected = {'clip_id', 'subject_id', 'body_backend', 'body_shape_json', 'stature', 'mass',
              'faces', 'root_translation', 'fps', 'times', 'motion_family',
              'motion_params_json', 'motion_coordinates', 'coordinate_names', 'coordinates',
              'body_names', 'scales', 'scaled_model_osim', 'point_names', 'points',
              'marker_names', 'markers', 'model_markers', 'ik_marker_errors', 'ik_rms',
              'ik_flagged'}
  native = {'native_' + k for k in ('global_orient', 'body_pose', 'left_hand_pose',
                                    'right_hand_pose', 'jaw_pose', 'leye_pose', 'reye_pose',
                                    'transl')}
  assert set(record) == expected | native
  assert str(record['body_backend']) == 'smplx' and str(record['motion_family']) == 'amass'
  assert json.loads(str(record['motion_params_json']))['start_frame'] == first
  assert record['motion_coordinates'].shape == (t, 39) and float(record['fps']) == 60.0
  assert json.loads(str(record['body_shape_json']))['gender'] == 'female'
  # Deterministic: the same draw gives the same record.
  again_clip = labels.make_amass_clip(
      subject, 'S000_00_amass', source, np.random.default_rng(3), _CONFIG, amass_root=root)
  again = {**labels.clip_record(subject, again_clip), **labels.clip_extras(subject, again_clip)}
  for key, value in record.items():
    np.testing.assert_array_equal(value, again[key], err_msg=key)


def test_amass_clip_errors(manual, subject, tmp_path):
  short = manual / 'amass' / 'DS' / 'p2' / 'short_stageii.npz'
  with pytest.raises(labels.ClipRejected, match='short_stageii.npz has 10 frames at 60 fps'):
    labels.make_amass_clip(subject, 'x', short, np.random.default_rng(0), _CONFIG)
  from odah_tfds import motions  # pylint: disable=g-import-not-at-top
  with pytest.raises(motions.ManualFilesError, match='file not found'):
    labels.make_amass_clip(subject, 'x', tmp_path / 'missing_stageii.npz',
                           np.random.default_rng(0), _CONFIG)
  clip = motions.load_amass_clip(short, 60.0)
  with pytest.raises(ValueError, match='outside'):
    labels.amass_frames(subject, clip, 5, 8)
  frames, _ = labels.amass_frames(subject, clip, 0, 4)
  with pytest.raises(ValueError, match='give the motion'):
    labels.label_frames(subject, 'x', frames, _CONFIG)


# ---- which AMASS sequences each subject gets --------------------------------------------------

def _fake_tree(root: pathlib.Path, people: int, sequences: int = 2) -> list[pathlib.Path]:
  files = []
  for p in range(people):
    for k in range(sequences):
      path = root / f'D{p % 3}' / f'p{p:02d}' / f's{k}_stageii.npz'
      path.parent.mkdir(parents=True, exist_ok=True)
      path.write_bytes(b'')
      files.append(path)
  return files


def test_amass_assignment_keeps_people_within_one_split(tmp_path):
  files = _fake_tree(tmp_path, 10)
  a = amass_subjects.assign(tmp_path, (5, 2, 1), seed=0)
  parts = [set(a.splits[s]) for s in amass_subjects.SPLITS]
  assert [len(p) for p in parts] == [6, 3, 1]  # proportional, largest remainders
  assert set.union(*parts) == set(a.groups) and sum(map(len, parts)) == 10  # disjoint
  assert sum(len(v) for v in a.groups.values()) == len(files)
  # Every subject of a split takes one of its groups; distinct while there are enough.
  for index in range(8):
    split, _ = a.split_of(index)
    assert a.group_of(index) in a.splits[split]
  assert len({a.group_of(i) for i in range(5)}) == 5
  assert [p.name for p in a.sequences(0)] == ['s0_stageii.npz', 's1_stageii.npz']
  # Deterministic from the seed; another seed shuffles differently.
  assert amass_subjects.assign(tmp_path, (5, 2, 1), seed=0) == a
  assert amass_subjects.assign(tmp_path, (5, 2, 1), seed=1).splits != a.splits
  # More subjects than groups: round robin within the split.
  b = amass_subjects.assign(tmp_path, (20, 1, 0), seed=0)
  assert b.splits['test'] == () and len(b.splits['validation']) == 1
  assert b.group_of(0) == b.group_of(len(b.splits['train']))
  with pytest.raises(IndexError):
    b.split_of(21)


def test_amass_assignment_errors(tmp_path):
  with pytest.raises(amass_subjects.AmassFilesError,
                     match=r'AMASS folder not found: .*amass.is.tue.mpg.de'):
    amass_subjects.assign(tmp_path / 'amass', (1, 1, 1), seed=0)
  (tmp_path / 'amass').mkdir()
  with pytest.raises(amass_subjects.AmassFilesError, match=r'no AMASS SMPL-X sequence'):
    amass_subjects.assign(tmp_path / 'amass', (1, 1, 1), seed=0)
  _fake_tree(tmp_path / 'amass', 2)
  with pytest.raises(amass_subjects.AmassFilesError, match='2 AMASS subject folder'):
    amass_subjects.assign(tmp_path / 'amass', (1, 1, 1), seed=0)
  assert issubclass(amass_subjects.AmassFilesError, base.ManualFilesError)


# ---- generation config and the builder's manual-file check ------------------------------------

def test_generation_config_motion_source():
  assert generate.GenerationConfig().motion == 'procedural'
  with pytest.raises(ValueError, match="needs body='smplx'"):
    generate.GenerationConfig(motion='amass')
  with pytest.raises(ValueError, match='motion must be one of'):
    generate.GenerationConfig(body='smplx', motion='mocap')


def test_check_manual_files(manual, tmp_path):
  amass_config = generate.GenerationConfig(body='smplx', motion='amass', subjects=(1, 1, 0))
  generate.check_manual_files(amass_config, manual)  # everything there
  generate.check_manual_files(generate.GenerationConfig(), None)  # anny needs nothing
  with pytest.raises(base.ManualFilesError) as e:
    generate.check_manual_files(amass_config, None, manual_dir_name='/data/manual')
  message = str(e.value)
  assert '/data/manual/smplx/{SMPLX_NEUTRAL.npz,SMPLX_MALE.npz,SMPLX_FEMALE.npz}' in message
  assert 'https://smpl-x.is.tue.mpg.de' in message and 'https://amass.is.tue.mpg.de' in message
  # smplx/ without any model file.
  (tmp_path / 'backgrounds').mkdir()
  with pytest.raises(sb.SmplxModelFilesError,
                     match=f'not found: {tmp_path}/smplx/SMPLX_NEUTRAL.npz.*smpl-x.is.tue'):
    generate.check_manual_files(generate.GenerationConfig(body='smplx'), tmp_path)
  # SMPL-X files but no amass/.
  (tmp_path / 'smplx').symlink_to(manual / 'smplx')
  generate.check_manual_files(generate.GenerationConfig(body='smplx'), tmp_path)
  with pytest.raises(amass_subjects.AmassFilesError,
                     match=f'AMASS folder not found: {tmp_path}/amass.*amass.is.tue'):
    generate.check_manual_files(amass_config, tmp_path)
  # A gender the sequences use without its model file.
  only_male = tmp_path / 'm'
  (only_male / 'smplx').mkdir(parents=True)
  (only_male / 'smplx' / 'SMPLX_MALE.npz').symlink_to(manual / 'smplx' / 'SMPLX_MALE.npz')
  (only_male / 'amass').symlink_to(manual / 'amass')
  with pytest.raises(sb.SmplxModelFilesError, match=f'{only_male}/smplx/SMPLX_FEMALE.npz'):
    generate.check_manual_files(amass_config, only_male)


_BUILD_WITHOUT_FILES = textwrap.dedent('''
    import json, sys
    import tensorflow_datasets as tfds
    import odah_tfds.odah  # registers odah
    data_dir = sys.argv[1]
    out = {}
    for config, manual in zip(('smplx', 'smplx_amass'), sys.argv[2:4]):
      builder = tfds.builder(f'odah/{config}', data_dir=data_dir)
      try:
        builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
            manual_dir=manual))
        out[config] = None
      except Exception as e:  # pylint: disable=broad-except
        out[config] = f'{type(e).__name__}: {e}'
    print('ERRORS ' + json.dumps(out))
''')


def test_builder_configs_stop_before_writing_without_the_files(manual, tmp_path):
  """TFDS (TensorFlow) in a child process: `smplx` with a manual_dir lacking smplx/, and
  `smplx_amass` with SMPL-X files but no amass/, fail with the expected path and where to
  register; nothing but TFDS's builder metadata is written (no shard, no dataset_info)."""
  no_smplx, no_amass = tmp_path / 'no_smplx', tmp_path / 'no_amass'
  for folder in (no_smplx, no_amass):
    (folder / 'backgrounds').mkdir(parents=True)
    (folder / 'backgrounds' / 'a.png').write_bytes(b'')
  (no_amass / 'smplx').symlink_to(manual / 'smplx')
  data_dir = tmp_path / 'tfds'
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
  env['PYTHONPATH'] = os.pathsep.join(p for p in (str(ROOT), env.get('PYTHONPATH')) if p)
  out = subprocess.run([sys.executable, '-c', _BUILD_WITHOUT_FILES, str(data_dir),
                        str(no_smplx), str(no_amass)], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=600, check=False)
  line = [l for l in out.stdout.splitlines() if l.startswith('ERRORS ')]
  assert line, out.stdout[-3000:] + out.stderr[-3000:]
  errors = json.loads(line[-1][len('ERRORS '):])
  smplx = errors['smplx']
  assert smplx and smplx.startswith('SmplxModelFilesError: odah/smplx: ')
  assert f'{no_smplx}/smplx/SMPLX_NEUTRAL.npz' in smplx and 'https://smpl-x.is.tue.mpg.de' in smplx
  amass = errors['smplx_amass']
  assert amass and f'AMASS folder not found: {no_amass}/amass' in amass
  assert 'https://amass.is.tue.mpg.de' in amass
  # TFDS writes only its builder metadata (odah/.config/) before generating splits.
  written = [p for p in data_dir.rglob('*') if p.is_file() and '.config' not in p.parts]
  assert not written, written


# ---- make_subjects --body=smplx --amass_dir ---------------------------------------------------

def _make_subjects(argv):
  """`python -m odah_tfds.make_subjects ARGV`, in this process (absl flags parsed, then
  reset)."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  try:
    flags.FLAGS(['make_subjects'] + list(argv))
    make_subjects.main([])
  finally:
    flags.FLAGS.unparse_flags()


def test_make_subjects_cli_smplx_amass(manual, tmp_path):
  out = tmp_path / 'out'
  _make_subjects(['--body=smplx', f'--smplx_dir={manual / "smplx"}',
                  f'--amass_dir={manual / "amass"}', '--num_subjects=1',
                  '--clips_per_subject=2', '--frames=16', '--ik=opensim', f'--out={out}',
                  '--opensim_log=error'])
  summary = json.loads((out / 'summary.json').read_text())
  assert summary['body'] == 'smplx' and summary['motions'] == 'amass'
  # Seed 0 gives S000 person p2: its short sequence is reported, the other written.
  assert summary['clips_written'] == 1 and summary['clips_rejected'] == 1
  assert 'short_stageii.npz has 10 frames at 60 fps' in summary['rejections'][0]
  assert summary['ik_marker_rms_max_cm'] < 1.5
  assert summary['coordinate_values_outside_limits'] == 0
  (npz,) = (out / 'S000').glob('S000_*_amass.npz')
  record = np.load(npz)
  assert str(record['body_backend']) == 'smplx' and str(record['motion_family']) == 'amass'
  params = json.loads(str(record['motion_params_json']))
  group = pathlib.Path(params['source']).parent.as_posix()
  assigned = amass_subjects.assign(manual / 'amass', (1, 0, 0), seed=0)
  assert group == assigned.group_of(0)
  gender = json.loads(str(record['body_shape_json']))['gender']
  assert gender == {'DS/p1': 'female', 'DS/p2': 'male'}[group]
  assert (out / 'S000' / 'S000.osim').is_file() and npz.with_suffix('.mot').is_file()


def test_make_subjects_cli_errors(manual, tmp_path):
  cases = [
      (['--amass_dir=' + str(manual / 'amass')], '--amass_dir poses SMPL-X bodies natively'),
      (['--body=smplx'], '--body=smplx needs --smplx_dir=DIR'),
      (['--body=smplx', f'--smplx_dir={tmp_path}'],
       f'SMPL-X model file not found: {tmp_path}/SMPLX_NEUTRAL.npz'),
      (['--body=smplx', f'--smplx_dir={manual / "smplx"}', f'--amass_dir={tmp_path / "a"}'],
       f'AMASS folder not found: {tmp_path / "a"}'),
  ]
  for argv, message in cases:
    with pytest.raises(SystemExit) as e:
      _make_subjects(argv + [f'--out={tmp_path / "out"}'])
    assert message in str(e.value.code), (argv, e.value.code)
  assert not (tmp_path / 'out').exists()  # stopped before writing anything


# ---- generate_subject (JAX IK, rendering) in a TF-free worker ----------------------------------

@pytest.mark.slow
def test_generate_subject_smplx_amass_in_a_worker(manual):
  """~40 s: a fresh worker compiles the FK and JAX IK programs, then renders."""
  from odah_tfds import schema, workers  # pylint: disable=g-import-not-at-top
  config = generate.GenerationConfig(body='smplx', motion='amass', subjects=(1, 1, 0),
                                     clips_per_subject=1, clip_frames=8, image_size=(64, 64),
                                     crop_size=32)
  dims = config.dims()
  assignment = amass_subjects.assign(manual / 'amass', config.subjects, config.seed)
  procedural = generate.GenerationConfig(body='smplx', subjects=(1, 0, 0), clips_per_subject=1,
                                         clip_frames=8, image_size=(64, 64), crop_size=32,
                                         families=('squat',))
  with workers.WorkerPool(1) as pool:
    results = [pool.call(generate.generate_subject, config, i, str(manual), None)
               for i in (0, 1, 0)]
    sampled = pool.call(generate.generate_subject, procedural, 0, str(manual), None)
  # Config `smplx`: sampled SMPL-X bodies, procedural motions.
  (_, example), = sampled['examples']
  schema.check_example(example, procedural.dims())
  assert example['body_backend'] == 'smplx' and example['motion_family'] == 'squat'
  assert len(json.loads(example['body_shape_json'])['betas']) == sb.SAMPLED_BETAS
  for index, result in zip((0, 1), results):
    assert len(result['examples']) == 1, result['rejected']
    (key, example), = result['examples']
    schema.check_example(example, dims)
    assert key.startswith(generate.subject_id(index)) and key.endswith('_amass')
    assert example['body_backend'] == 'smplx' and example['motion_family'] == 'amass'
    params = json.loads(example['motion_params_json'])
    assert pathlib.Path(params['source']).parent.as_posix() == assignment.group_of(index)
    assert example['ik_rms'].max() < 0.015
    assert example['masks'].reshape(2, config.clip_frames, -1).max(-1).all()  # person seen
  # Each split's subject is another AMASS person with its own body.
  genders = [json.loads(r['examples'][0][1]['body_shape_json'])['gender'] for r in results[:2]]
  assert sorted(genders) == ['female', 'male']
  # Deterministic: subject 0 again gives the same example.
  (_, a), (_, b) = results[0]['examples'][0], results[2]['examples'][0]
  for name in a:
    np.testing.assert_array_equal(np.asarray(a[name]), np.asarray(b[name]), err_msg=name)

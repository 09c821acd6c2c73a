"""Tests of the AMASS SMPL-X reader on stand-in files written here (procedural
content in the stage-II file format; no AMASS data is used or needed)."""

from __future__ import annotations

import numpy as np
import pytest

from odah_tfds.motions import amass
from odah_tfds.motions.amass import ManualFilesError


def _stage_ii(path, num_frames=120, fps=120.0, poses=None, rate_key='mocap_frame_rate',
              split=False, **overrides):
  """Writes a stage-II-like SMPL-X npz; returns the arrays written."""
  t = np.arange(num_frames) / fps
  if poses is None:
    rng = np.random.default_rng(0)
    amp = rng.uniform(0.05, 0.4, 165)
    freq = rng.uniform(0.2, 1.0, 165)
    poses = amp * np.sin(2 * np.pi * freq * t[:, None] + rng.uniform(0, 6, 165))
  data = {
      'trans': np.stack([0.8 * t, 0.9 + 0.02 * np.sin(4 * t), 0.1 * t], -1),
      'gender': np.array('female'),
      'betas': np.linspace(-1, 1, 16),
      rate_key: np.array(fps),
      'surface_model_type': np.array('smplx'),
  }
  if split:
    data.update(root_orient=poses[:, :3], pose_body=poses[:, 3:66], pose_jaw=poses[:, 66:69],
                pose_eye=poses[:, 69:75], pose_hand=poses[:, 75:165])
  else:
    data['poses'] = poses
  data.update(overrides)
  data = {k: v for k, v in data.items() if v is not None}
  path.parent.mkdir(parents=True, exist_ok=True)
  np.savez(path, **data)
  return data


def _angle_between(aa, bb):
  """Rotation angle (rad) between axis-angle rotations (..., 3)."""
  qa, qb = amass.axis_angle_to_quaternion(aa), amass.axis_angle_to_quaternion(bb)
  # Relative rotation conj(qa) * qb; its angle from (w, v) is stable near zero.
  w = np.sum(qa * qb, axis=-1)
  v = (qa[..., :1] * qb[..., 1:] - qb[..., :1] * qa[..., 1:]
       - np.cross(qa[..., 1:], qb[..., 1:]))
  return 2 * np.arctan2(np.linalg.norm(v, axis=-1), np.abs(w))


def test_find_files_recursive_and_sorted(tmp_path):
  root = tmp_path / 'amass'
  for rel in ('KIT/3/b_stageii.npz', 'ACCAD/s2/a_stageii.npz', 'ACCAD/s1/z_stageii.npz'):
    _stage_ii(root / rel, num_frames=5)
  (root / 'ACCAD' / 'notes.npz').write_bytes(b'')
  (root / 'CMU').mkdir()
  (root / 'CMU' / 'x_stageii.npz.txt').write_text('no')
  found = amass.find_amass_files(root)
  assert [p.relative_to(root).as_posix() for p in found] == [
      'ACCAD/s1/z_stageii.npz', 'ACCAD/s2/a_stageii.npz', 'KIT/3/b_stageii.npz']
  assert amass.find_amass_files(root / 'CMU') == []
  with pytest.raises(ManualFilesError, match='amass/<dataset>/<subject>'):
    amass.find_amass_files(tmp_path / 'missing')


def test_read_fields_gender_betas(tmp_path):
  data = _stage_ii(tmp_path / 'a_stageii.npz')
  clip = amass.load_amass_clip(tmp_path / 'a_stageii.npz', fps=120.0)
  assert clip.gender == 'female' and clip.source_fps == 120.0 and clip.fps == 120.0
  assert np.allclose(clip.betas, data['betas'])
  assert clip.num_frames == 120 and clip.duration == pytest.approx(1.0)
  assert clip.global_orient.shape == (120, 3) and clip.body_pose.shape == (120, 63)
  assert clip.jaw_pose.shape == (120, 3) and clip.eye_pose.shape == (120, 6)
  assert clip.left_hand_pose.shape == (120, 45) and clip.right_hand_pose.shape == (120, 45)
  # Same rate: the rotations are the file's (canonical angle <= pi here) in its order.
  assert np.allclose(clip.poses, data['poses'], atol=1e-12)
  assert np.allclose(clip.body_pose, data['poses'][:, 3:66], atol=1e-12)
  assert np.allclose(clip.left_hand_pose, data['poses'][:, 75:120], atol=1e-12)
  assert np.allclose(clip.transl, data['trans'])
  assert clip.source.endswith('a_stageii.npz')


def test_alternative_keys(tmp_path):
  data = _stage_ii(tmp_path / 'b_stageii.npz', rate_key='mocap_framerate', split=True,
                   gender=np.array(b'male'), betas=np.ones((1, 10)))
  clip = amass.load_amass_clip(tmp_path / 'b_stageii.npz', fps=120.0)
  assert clip.gender == 'male' and clip.betas.shape == (10,)
  assert np.allclose(clip.right_hand_pose, data['pose_hand'][:, 45:], atol=1e-12)
  assert np.allclose(clip.eye_pose, data['pose_eye'], atol=1e-12)


def test_120_to_60_halves_frames(tmp_path):
  data = _stage_ii(tmp_path / 'c_stageii.npz', num_frames=121, fps=120.0)
  clip = amass.load_amass_clip(tmp_path / 'c_stageii.npz', fps=60.0)
  assert clip.num_frames == 61 and clip.fps == 60.0
  assert np.allclose(clip.transl, data['trans'][::2])
  assert np.allclose(_angle_between(clip.body_pose.reshape(-1, 21, 3),
                                    data['poses'][::2, 3:66].reshape(-1, 21, 3)), 0, atol=1e-9)


def test_30_to_60_interpolates(tmp_path):
  num = 31
  angle = np.linspace(0.0, 1.5, num)  # about z, linear in time
  poses = np.zeros((num, 165))
  poses[:, 5] = angle  # body joint 0 about z
  data = _stage_ii(tmp_path / 'd_stageii.npz', num_frames=num, fps=30.0, poses=poses)
  clip = amass.load_amass_clip(tmp_path / 'd_stageii.npz', fps=60.0)
  assert clip.num_frames == 61
  expected = np.linspace(0.0, 1.5, 61)  # slerp about a fixed axis is linear in angle
  assert np.allclose(clip.body_pose[:, 2], expected, atol=1e-12)
  assert np.allclose(clip.body_pose[:, :2], 0.0, atol=1e-12)
  assert np.allclose(clip.transl[1], 0.5 * (data['trans'][0] + data['trans'][1]))


def test_constant_rotation_stays_constant(tmp_path):
  poses = np.tile(np.random.default_rng(3).uniform(-1.0, 1.0, 165), (50, 1))
  poses = poses.reshape(50, 55, 3)
  poses *= np.minimum(1.0, 2.5 / np.linalg.norm(poses, axis=-1, keepdims=True))  # angles < pi
  _stage_ii(tmp_path / 'e_stageii.npz', num_frames=50, fps=50.0, poses=poses.reshape(50, 165))
  clip = amass.load_amass_clip(tmp_path / 'e_stageii.npz', fps=60.0)
  assert np.allclose(clip.poses, poses[0].reshape(165)[None], atol=1e-12)


def test_slerp_takes_the_shorter_arc():
  # 170 deg and -170 deg about z are 20 deg apart through 180, not 340 through 0.
  a = np.array([[0.0, 0.0, np.radians(170)]])
  b = np.array([[0.0, 0.0, np.radians(-170)]])
  mid = amass.resample_axis_angle(np.concatenate([a, b]), 1.0, 2.0)[1]
  assert np.linalg.norm(mid) == pytest.approx(np.pi, abs=1e-9)
  # The same rotation written as q and -q (angle 2 pi - x about the opposite axis).
  c = np.array([[0.0, 0.0, 0.3]])
  d = np.array([[0.0, 0.0, 0.3 - 2 * np.pi]])
  out = amass.resample_axis_angle(np.concatenate([c, d]), 1.0, 4.0)
  assert np.allclose(_angle_between(out, np.repeat(c, len(out), 0)), 0.0, atol=1e-9)


def test_quaternion_round_trip():
  rng = np.random.default_rng(7)
  axis = rng.normal(size=(100, 3))
  axis /= np.linalg.norm(axis, axis=-1, keepdims=True)
  aa = axis * rng.uniform(0, np.pi - 1e-6, (100, 1))
  back = amass.quaternion_to_axis_angle(amass.axis_angle_to_quaternion(aa))
  assert np.allclose(back, aa, atol=1e-9)
  assert np.allclose(amass.quaternion_to_axis_angle(amass.axis_angle_to_quaternion(
      np.zeros((2, 3)))), 0.0)


@pytest.mark.parametrize('change, message', [
    (dict(trans=None), "missing key 'trans'"),
    (dict(gender=None), "missing key 'gender'"),
    (dict(mocap_frame_rate=None), 'mocap_frame_rate'),
    (dict(poses=None), 'missing pose keys'),
    (dict(poses=np.zeros((20, 160))), r'shape \(T, 165\)'),
    (dict(poses=np.zeros((20, 156)), surface_model_type=None), 'SMPL\\+H'),
    (dict(surface_model_type=np.array('smplh')), 'not an SMPL-X file'),
    (dict(trans=np.zeros((19, 3))), 'trans has 19 frames'),
    (dict(gender=np.array('robot')), 'gender is'),
    (dict(mocap_frame_rate=np.array(-5.0)), 'positive'),
    (dict(betas=np.zeros((3, 4))), 'betas must have shape'),
])
def test_bad_files(tmp_path, change, message):
  poses = np.zeros((20, 165))
  kwargs = dict(num_frames=20, poses=poses)
  kwargs.update(change)
  if 'poses' in change:
    kwargs['poses'] = change['poses'] if change['poses'] is not None else None
  path = tmp_path / 'x_stageii.npz'
  if kwargs.get('poses') is None and 'poses' in change:
    data = _stage_ii(path, num_frames=20, poses=np.zeros((20, 165)))
    del data['poses']
    np.savez(path, **data)
  else:
    _stage_ii(path, **kwargs)
  with pytest.raises(ManualFilesError, match=message) as info:
    amass.load_amass_clip(path)
  assert '<manual_dir>/amass' in str(info.value)  # says what is expected


def test_non_finite_values(tmp_path):
  poses = np.zeros((20, 165))
  poses[3, 10] = np.nan
  _stage_ii(tmp_path / 'n_stageii.npz', num_frames=20, poses=poses)
  with pytest.raises(ManualFilesError, match='non-finite'):
    amass.load_amass_clip(tmp_path / 'n_stageii.npz')


def test_split_keys_must_agree_with_poses(tmp_path):
  data = _stage_ii(tmp_path / 's_stageii.npz', num_frames=20, split=True)
  data['poses'] = np.zeros((20, 165)) + 0.5
  np.savez(tmp_path / 's_stageii.npz', **data)
  with pytest.raises(ManualFilesError, match='disagrees'):
    amass.load_amass_clip(tmp_path / 's_stageii.npz')


def test_missing_and_unreadable_files(tmp_path):
  with pytest.raises(ManualFilesError, match='file not found'):
    amass.load_amass_clip(tmp_path / 'nope_stageii.npz')
  (tmp_path / 'bad_stageii.npz').write_bytes(b'not a zip')
  with pytest.raises(ManualFilesError, match='readable'):
    amass.load_amass_clip(tmp_path / 'bad_stageii.npz')
  np.savez(tmp_path / 'obj_stageii.npz', poses=np.array([object()], dtype=object))
  with pytest.raises(ManualFilesError, match='pickle'):
    amass.load_amass_clip(tmp_path / 'obj_stageii.npz')

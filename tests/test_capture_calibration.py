"""banet_jax.capture.calibration: every reader against an independent projection path.

Each format test builds a ring of look-at cameras in the project world, writes them in the
format's own world and units (written here, from the raw convention, not with the module),
loads the file and checks that known points land where `cv2.projectPoints` puts them from
the raw values in the file's world (with and without distortion).
"""

from __future__ import annotations

import json
import pickle
import re
import subprocess
import sys
import zipfile

import cv2
import numpy as np
import pytest

from banet_jax.capture import calibration as cb
from banet_jax.capture.calibration import CalibrationError, load_calibration
from banet_jax.geometry import look_at

A_ZUP = np.array([[0.0, 1, 0], [0, 0, 1], [1, 0, 0]])  # lab Z up -> project: (y, z, x), as Pose2Sim
DIST = np.array([-0.12, 0.06, 0.0012, -0.0008, 0.01])
SIZE = (640, 480)
RING_NAMES = ['cam1', 'cam2', 'cam3', 'cam4']
K0 = np.array([[600.0, 0, 321.3], [0, 598.0, 238.7], [0, 0, 1]])


def _look_at(center, target=(0.0, 1.0, 0.0)):
  """World -> camera (R, t) of a camera at `center` looking at `target`, image up ~ +y."""
  return look_at(center, target)


def _ring(n=4, radius=3.5, height=1.8):
  """n cameras evenly on a circle around the y axis (mean image-up exactly +y)."""
  angles = 2 * np.pi * np.arange(n) / n + 0.3
  return [(f'cam{i + 1}',) + _look_at([radius * np.cos(a), height, radius * np.sin(a)])
          for i, a in enumerate(angles)]


def _points(n=20, seed=0):
  rng = np.random.default_rng(seed)
  return rng.uniform([-0.6, 0.0, -0.6], [0.6, 1.9, 0.6], size=(n, 3))


def _cv_project(X, R, t, K, dist):
  rvec = cv2.Rodrigues(np.asarray(R, np.float64))[0]
  out = cv2.projectPoints(np.asarray(X, np.float64).reshape(-1, 1, 3), rvec,
                          np.asarray(t, np.float64), K, np.asarray(dist, np.float64))[0]
  return out.reshape(-1, 2)


def _apply(S, X):
  return X @ S[:3, :3].T + S[:3, 3]


def _random_rotation(seed):
  q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
  q = q * np.sign(np.diag(r))
  return q if np.linalg.det(q) > 0 else -q


def _floats(values):
  return json.dumps(np.asarray(values, np.float64).tolist())


def _opencv_toml(cams, fisheye):
  """Pose2Sim / aniposelib toml text. cams: [(section, name, size, K, dist, R, t)]."""
  out = []
  for section, name, size, K, dist, R, t in cams:
    out += [f'[{section}]', f'name = "{name}"', f'size = {_floats(size)}',
            f'matrix = {_floats(K)}', f'distortions = {_floats(dist)}',
            f'rotation = {_floats(cv2.Rodrigues(R)[0].ravel())}',
            f'translation = {_floats(t)}'] + (['fisheye = false'] if fisheye else []) + ['']
  return '\n'.join(out + ['[metadata]', 'adjusted = false', 'error = 0.0', ''])


# --------------------------------------------------------------------------- cameras


def test_project_matches_cv2_and_numpy_model():
  name, R, t = _ring()[0]
  cam = cb.CameraCalibration(name, SIZE, K0, DIST, R, t)
  X = _points()
  np.testing.assert_allclose(cam.project(X), _cv_project(X, R, t, K0, DIST), atol=1e-9)
  np.testing.assert_allclose(cam.project(X, distort=False), _cv_project(X, R, t, K0, np.zeros(5)),
                             atol=1e-9)
  assert cam.project(X.reshape(4, 5, 3)).shape == (4, 5, 2)
  behind = 2 * cam.center() - np.array([0.0, 1.0, 0.0])  # mirror of the target
  assert np.all(np.isnan(cam.project(behind)))
  np.testing.assert_allclose(cam.center(), -R.T @ t)
  assert cam.K.flags.writeable is False


def test_undistort_points_inverts_distortion():
  name, R, t = _ring()[1]
  cam = cb.CameraCalibration(name, SIZE, K0, DIST, R, t)
  X = _points(50, seed=1)
  np.testing.assert_allclose(cam.undistort_points(cam.project(X)), cam.project(X, distort=False),
                             atol=1e-6)


def test_undistort_maps_move_a_distorted_spot_to_its_pinhole_pixel():
  cam = cb.CameraCalibration('c', SIZE, K0, 2 * DIST, np.eye(3), np.zeros(3))
  w, h = SIZE
  for ideal in ([80.0, 60.0], [560.0, 410.0], [150.0, 380.0]):
    ray = np.linalg.solve(K0, [*ideal, 1.0])
    distorted = cam.project(ray)
    assert np.linalg.norm(distorted - ideal) > 3  # the test means something
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    frame = np.exp(-((xx - distorted[0]) ** 2 + (yy - distorted[1]) ** 2) / (2 * 1.5 ** 2))
    map_x, map_y = cam.undistort_maps()
    assert map_x.shape == (h, w) and map_y.shape == (h, w)
    out = cv2.remap(frame.astype(np.float32), map_x, map_y, cv2.INTER_LINEAR)
    win = (slice(int(ideal[1]) - 8, int(ideal[1]) + 9), slice(int(ideal[0]) - 8, int(ideal[0]) + 9))
    weights = out[win]
    centroid = np.array([(weights * xx[win]).sum(), (weights * yy[win]).sum()]) / weights.sum()
    assert np.linalg.norm(centroid - ideal) < 0.5, (ideal, centroid)


def test_resized_maps_pixel_centres():
  name, R, t = _ring()[2]
  cam = cb.CameraCalibration(name, SIZE, K0, DIST, R, t)
  half = cam.resized((320, 240))
  assert half.size == (320, 240) and cam.scaled(0.5).size == (320, 240)
  X = _points()
  np.testing.assert_allclose(half.project(X), (cam.project(X) + 0.5) * 0.5 - 0.5, atol=1e-9)


def test_transformed_select_and_camera():
  cams = tuple(cb.CameraCalibration(n, SIZE, K0, DIST, R, t) for n, R, t in _ring())
  cal = cb.Calibration(cams, 'mem', 'project', floor_known=False)
  R_w, t_w = _random_rotation(3), np.array([0.3, -0.2, 1.0])
  moved = cal.transformed(R_w, t_w, floor_known=True, note='floor from feet')
  assert moved.floor_known and moved.notes[-1] == 'floor from feet'
  X = _points()
  for a, b in zip(cal, moved):
    np.testing.assert_allclose(b.project(X @ R_w.T + t_w), a.project(X), atol=1e-9)
  np.testing.assert_allclose(moved.source_to_world[:3, :3], R_w)
  assert cal.select(['cam3', 'cam1']).names == ['cam3', 'cam1']
  with pytest.raises(CalibrationError, match=r"mem: camera 'nope'.*cam1, cam2, cam3, cam4"):
    cal.camera('nope')


# --------------------------------------------------------------------------- formats


@pytest.mark.parametrize('dist', [np.zeros(5), DIST], ids=['pinhole', 'distorted'])
def test_pose2sim(tmp_path, dist):
  cams = []
  for name, R, t in _ring():
    cams.append((name, name, SIZE, K0, dist[:4] if not dist[4] else dist, R @ A_ZUP, t))
  path = tmp_path / 'Calib.toml'
  path.write_text(_opencv_toml(cams, fisheye=True))
  cal = load_calibration(path)
  assert (cal.format, cal.floor_known, cal.names) == ('pose2sim', True, RING_NAMES)
  X = _points()
  X_lab = X @ A_ZUP  # A.T @ X
  np.testing.assert_allclose(_apply(cal.source_to_world, X_lab), X, atol=1e-12)
  X_trc = X_lab[:, [1, 2, 0]]  # Pose2Sim's own TRC outputs: (y, z, x) of its lab
  np.testing.assert_allclose(X_trc, X, atol=1e-12)
  for (_, name, size, K, d, R_lab, t), cam in zip(cams, cal):
    assert cam.size == SIZE
    np.testing.assert_allclose(cam.project(X), _cv_project(X_lab, R_lab, t, K, d), atol=1e-8)
  # The module's Pose2Sim writer reads back the same cameras.
  out = tmp_path / 'again.toml'
  cb.write_pose2sim_toml(cal, out)
  again = load_calibration(out)
  assert again.format == 'pose2sim' and again.names == cal.names
  for a, b in zip(cal, again):
    for key in ('K', 'dist', 'R', 't'):
      np.testing.assert_allclose(getattr(b, key), getattr(a, key), atol=1e-12)


def _qca_text(cams, scale, left=16, top=8, extra=''):
  """Qualisys XML: cams [(name, size, K, dist, R_lab, t_lab_mm)] in the lab (Z up, mm)."""
  out = ['<?xml version="1.0" encoding="ASCII"?>', '<calibration type="regular">', '<cameras>']
  for name, (w, h), K, dist, R_lab, t_mm in cams:
    M = np.diag([1.0, -1, -1]) @ R_lab
    C = -R_lab.T @ t_mm
    r = ' '.join(f'r{i + 1}{j + 1}="{float(M[i, j])!r}"' for i in range(3) for j in range(3))
    k1, k2, p1, p2, k3 = (float(v) for v in np.asarray(dist) * scale)
    C = [float(c) for c in C]
    fu, fv = float(K[0, 0] * 64), float(K[1, 1] * 64)  # 1/64 pixels, sensor frame
    cu, cv = float((K[0, 2] + left) * 64), float((K[1, 2] + top) * 64)
    fov = f'left="{left}" top="{top}" right="{left + w - 1}" bottom="{top + h - 1}"'
    out += [f'<camera active="1" model="Miqus Video" serial="{name}">',
            f'<fov_marker {fov}/>', f'<fov_video {fov}/>',
            f'<transform {r} x="{C[0]!r}" y="{C[1]!r}" z="{C[2]!r}"/>',
            f'<intrinsic focalLengthU="{fu!r}" focalLengthV="{fv!r}" '
            f'centerPointU="{cu!r}" centerPointV="{cv!r}" '
            f'radialDistortion1="{k1!r}" radialDistortion2="{k2!r}" radialDistortion3="{k3!r}" '
            f'tangentalDistortion1="{p1!r}" tangentalDistortion2="{p2!r}" skew="0"/>',
            '</camera>']
  return '\n'.join(out + [extra, '</cameras>', '</calibration>', ''])


@pytest.mark.parametrize('dist,scale', [(np.zeros(5), 1.0), (DIST, 1.0), (DIST, 64.0)],
                         ids=['pinhole', 'distorted', 'distorted-div64'])
def test_qualisys(tmp_path, dist, scale):
  cams = [(name, SIZE, K0, dist, R @ A_ZUP, 1000 * t) for name, R, t in _ring()]
  marker = ('<camera model="Oqus 7+" serial="m1">'
            '<fov_video left="0" top="0" right="9" bottom="9"/></camera>')
  path = tmp_path / 'lab.qca.txt'
  path.write_text(_qca_text(cams, scale, extra=marker))
  cal = load_calibration(path, qualisys_distortion_scale=scale)
  assert (cal.format, cal.floor_known, cal.names) == ('qualisys', True, RING_NAMES)
  assert any('m1 (Oqus 7+)' in n for n in cal.notes)
  X = _points()
  X_lab_mm = 1000 * X @ A_ZUP
  np.testing.assert_allclose(_apply(cal.source_to_world, X_lab_mm), X, atol=1e-12)
  for (name, size, K, d, R_lab, t_mm), cam, (_, R, t) in zip(cams, cal, _ring()):
    assert cam.size == SIZE
    np.testing.assert_allclose(cam.project(X), _cv_project(X_lab_mm, R_lab, t_mm, K, d), atol=1e-8)
    np.testing.assert_allclose(cam.R, R, atol=1e-12)
    np.testing.assert_allclose(cam.t, t, atol=1e-12)


@pytest.mark.parametrize('dist', [np.zeros(5), DIST], ids=['pinhole', 'distorted'])
@pytest.mark.parametrize('units,factor',
                         [('auto', 1000.0), ('mm', 1000.0), ('auto', 1.0), ('m', 1.0)])
def test_anipose(tmp_path, dist, units, factor):
  Q, b = _random_rotation(7), np.array([0.4, -0.1, 0.25]) * factor  # board world
  cams = []
  for i, (name, R, t) in enumerate(_ring()):
    R_f = R @ Q.T  # X_f = factor * Q X + b
    cams.append((f'cam_{i}', name, SIZE, K0, dist, R_f, factor * t - R_f @ b))
  path = tmp_path / 'calibration.toml'
  path.write_text(_opencv_toml(cams, fisheye=False))
  cal = load_calibration(path, units=units)
  assert (cal.format, cal.floor_known) == ('anipose', False)
  assert any('up unknown' in n for n in cal.notes)
  guess = 'guessed as mm' if factor > 1 else 'guessed as m'
  assert any(guess in n for n in cal.notes) == (units == 'auto')
  X = _points()
  X_f = factor * X @ Q.T + b
  X_loaded = _apply(cal.source_to_world, X_f)
  # Same up (+y) and metres: heights differ by a constant, distances are kept.
  dy = X_loaded[:, 1] - X[:, 1]
  np.testing.assert_allclose(dy, dy[0], atol=1e-9)
  np.testing.assert_allclose(np.linalg.norm(X_loaded - X_loaded[0], axis=1),
                             np.linalg.norm(X - X[0], axis=1), atol=1e-9)
  for (_, name, size, K, d, R_f, t_f), cam in zip(cams, cal):
    np.testing.assert_allclose(cam.project(X_loaded), _cv_project(X_f, R_f, t_f, K, d), atol=1e-7)


@pytest.mark.parametrize('dist', [np.zeros(5), DIST], ids=['pinhole', 'distorted'])
def test_opencap_folder_and_single_pickle(tmp_path, dist):
  Q = _look_at([0.0, 0.0, 0.0], [0.0, 1.0, 0.3])[0]  # a tilted board world, in mm
  raw = {}
  for i, (name, R, t) in enumerate(_ring()):
    R_f = R @ Q.T
    folder = tmp_path / 'Videos' / f'Cam{i}'
    folder.mkdir(parents=True)
    raw[f'Cam{i}'] = (R_f, 1000 * t)
    data = {'intrinsicMat': K0, 'distortion': dist.reshape(1, 5), 'rotation': R_f,
            'translation': 1000 * t.reshape(3, 1), 'imageSize': np.array([[SIZE[1]], [SIZE[0]]]),
            'rotation_EulerAngles': cv2.Rodrigues(R_f)[0]}
    with open(folder / 'cameraIntrinsicsExtrinsics.pickle', 'wb') as f:
      pickle.dump(data, f)
  X = _points()
  X_f = 1000 * X @ Q.T
  for path in (tmp_path, tmp_path / 'Videos'):
    cal = load_calibration(path)
    assert (cal.format, cal.floor_known) == ('opencap', False)
    assert cal.names == ['Cam0', 'Cam1', 'Cam2', 'Cam3']
    X_loaded = _apply(cal.source_to_world, X_f)
    dy = X_loaded[:, 1] - X[:, 1]
    np.testing.assert_allclose(dy, dy[0], atol=1e-9)
    for cam in cal:
      assert cam.size == SIZE
      R_f, t_f = raw[cam.name]
      np.testing.assert_allclose(cam.project(X_loaded), _cv_project(X_f, R_f, t_f, K0, dist),
                                 atol=1e-7)
  single = load_calibration(tmp_path / 'Videos' / 'Cam2' / 'cameraIntrinsicsExtrinsics.pickle')
  assert single.names == ['Cam2']


def test_banet_npy(tmp_path):
  ring = _ring()
  data = {}
  for key, (_, R, t) in zip(('front', 'side'), ring[:2]):
    data[f'{key}_camera_matrix'] = K0
    data[f'{key}_camera_rot_trans'] = np.concatenate([R, t[:, None]], axis=1)
  path = tmp_path / 'S1_walk_camera_info.npy'
  np.save(path, data, allow_pickle=True)
  cal = load_calibration(path)
  assert (cal.format, cal.floor_known, cal.names) == ('banet', False, ['front', 'side'])
  assert cal.camera('front').size == (round(2 * K0[0, 2]), round(2 * K0[1, 2]))
  X = _points()
  for cam, (_, R, t) in zip(cal, ring):
    np.testing.assert_allclose(cam.project(X), _cv_project(X, R, t, K0, np.zeros(5)), atol=1e-9)
  sized = load_calibration(path, image_size={'front': (1000, 1002), 'side': (640, 480)})
  assert sized.camera('front').size == (1000, 1002) and sized.camera('side').size == (640, 480)
  # Official files with translations in millimetres are recognised.
  data_mm = {k: (np.concatenate([v[:, :3], 1000 * v[:, 3:]], 1) if 'rot_trans' in k else v)
             for k, v in data.items()}
  np.save(tmp_path / 'mm.npy', data_mm, allow_pickle=True)
  cal_mm = load_calibration(tmp_path / 'mm.npy')
  assert any('guessed as mm' in n for n in cal_mm.notes)
  np.testing.assert_allclose(cal_mm.camera('side').t, ring[1][2], atol=1e-12)


def test_project_format_round_trip_is_exact(tmp_path):
  rng = np.random.default_rng(5)
  cams = []
  for i, (name, R, t) in enumerate(_ring()):
    K = K0 + np.diag([1 / 3, 1e-17, 0]) + np.array([[0, 0, np.pi], [0, 0, 1e16], [0, 0, 0]])
    names = [name, 'a "quoted" \\ name', 'caméra ☃ \x7f', 'tab\tline\n']
    cams.append(cb.CameraCalibration(names[i], (1920, 1088), K, rng.normal(size=5) * 1e-3, R,
                                     t + rng.normal(size=3) / 7))
  cal = cb.Calibration(tuple(cams), 'mem', 'pose2sim', floor_known=True,
                       notes=('a note', 'with "quotes"'))
  path = tmp_path / 'cameras.toml'
  cb.save_calibration(cal, path)
  again = load_calibration(path)
  assert (again.format, again.floor_known, again.notes, again.names) == (
      'project', True, cal.notes, cal.names)
  for a, b in zip(cal, again):
    assert a.size == b.size
    for key in ('K', 'dist', 'R', 't'):
      assert np.array_equal(getattr(a, key), getattr(b, key)), key


# --------------------------------------------------------------------------- errors


def _pose2sim_text(**overrides):
  """A one-camera Pose2Sim toml with table lines overridden (value None drops the key)."""
  name, R, t = _ring()[0]
  lines = {'name': f'"{name}"', 'size': '[640, 480]', 'matrix': _floats(K0),
           'distortions': '[0.0, 0.0, 0.0, 0.0]', 'rotation': _floats(cv2.Rodrigues(R)[0].ravel()),
           'translation': _floats(t), 'fisheye': 'false'}
  lines.update(overrides)
  body = '\n'.join(f'{k} = {v}' for k, v in lines.items() if v is not None)
  return f'[{name}]\n{body}\n\n[metadata]\nadjusted = false\nerror = 0.0\n'


def _project_text(**overrides):
  name, R, t = _ring()[0]
  cam = cb.CameraCalibration(name, SIZE, K0, DIST, R, t)
  fields = {'K': cam.K, 'dist': cam.dist, 'R': cam.R, 't': cam.t}
  lines = ['format = "banet-jax-cameras"', 'version = 1', 'world = "opensim"',
           'floor_known = false', '[[camera]]', f'name = "{name}"', 'size = [640, 480]']
  for key, value in fields.items():
    value = overrides.get(key, _floats(value))
    if value is not None:
      lines.append(f'{key} = {value}')
  return '\n'.join(lines) + '\n'


_BAD_R = json.dumps((1.1 * np.eye(3)).tolist())
_K_TEXT = '[[600.0, 0.0, 320.0], [0.0, 600.0, 240.0], [0.0, 0.0, 1.0]]'
BAD_FILES = {
    'toml syntax': ('x.toml', '[cam1\nname = ', None, 'not valid TOML'),
    'missing matrix': ('Calib.toml', _pose2sim_text(matrix=None), 'cam1', "missing key 'matrix'"),
    'fisheye': ('Calib.toml', _pose2sim_text(fisheye='true'), 'cam1', 'fisheye'),
    'three distortions': ('Calib.toml', _pose2sim_text(distortions='[0.1, 0.0, 0.0]'), 'cam1',
                          'distortion has 3 values'),
    'matrix shape': ('Calib.toml', _pose2sim_text(matrix='[[1.0, 0.0, 2.0], [0.0, 1.0, 2.0]]'),
                     'cam1', "'matrix' has shape"),
    'size text': ('Calib.toml', _pose2sim_text(size='["a", 480]'), 'cam1', "'size' is not numeric"),
    'K nan': ('p.toml', _project_text(K=_K_TEXT.replace('600.0', 'nan', 1)), 'cam1',
              'non-finite'),
    'K singular': ('p.toml', _project_text(K=_K_TEXT.replace('600.0', '0.0', 1)), 'cam1',
                   'singular'),
    'R not rotation': ('p.toml', _project_text(R=_BAD_R), 'cam1', 'not a rotation'),
    'R mirrored': ('p.toml', _project_text(R=json.dumps(np.diag([1.0, 1, -1]).tolist())),
                   'cam1', 'not a rotation'),
    'dist length': ('p.toml', _project_text(dist='[0.0, 0.0]'), 'cam1', "'dist' has shape"),
    'missing t': ('p.toml', _project_text(t=None), 'cam1', "missing key 't'"),
    'project version': ('p.toml', _project_text().replace('version = 1', 'version = 2'), None,
                        'version 2 unsupported'),
    'qca no transform': ('a.qca.txt', '<calibration><cameras><camera serial="cam7" model="none">'
                         '<fov_video left="0" top="0" right="9" bottom="9"/></camera></cameras>'
                         '</calibration>', 'cam7', 'missing <intrinsic>'),
    'qca bad xml': ('a.qca.txt', '<calibration><cameras>', None, 'not valid XML'),
    'unknown extension': ('cal.json', '{}', None, 'unknown calibration format'),
}


@pytest.mark.parametrize('case', sorted(BAD_FILES))
def test_bad_files_name_file_and_camera(tmp_path, case):
  filename, text, camera, problem = BAD_FILES[case]
  path = tmp_path / filename
  path.write_text(text, encoding='utf-8')
  with pytest.raises(CalibrationError) as info:
    load_calibration(path)
  message = str(info.value)
  assert str(path) in message and problem in message, message
  if camera is not None:
    assert f"camera '{camera}'" in message, message


def test_bad_binary_inputs(tmp_path):
  with pytest.raises(CalibrationError, match='file not found'):
    load_calibration(tmp_path / 'missing.toml')
  (tmp_path / 'Cam0').mkdir()
  with open(tmp_path / 'Cam0' / 'cameraIntrinsicsExtrinsics.pickle', 'wb') as f:
    pickle.dump({'intrinsicMat': K0, 'distortion': np.zeros((1, 5)),
                 'translation': np.zeros((3, 1)), 'imageSize': np.array([[480], [640]])}, f)
  with pytest.raises(CalibrationError, match=r"Cam0.*camera 'Cam0': missing key 'rotation'"):
    load_calibration(tmp_path)
  empty = tmp_path / 'empty'
  empty.mkdir()
  with pytest.raises(CalibrationError, match=re.escape(str(empty)) + '.*no OpenCap calibration'):
    load_calibration(empty)
  path = tmp_path / 'x_camera_info.npy'
  np.save(path, {'front_camera_matrix': K0, 'front_camera_rot_trans': np.eye(3, 4),
                 'side_camera_matrix': K0}, allow_pickle=True)
  expected = re.escape(str(path)) + r".*camera 'side'.*side_camera_rot_trans"
  with pytest.raises(CalibrationError, match=expected):
    load_calibration(path)
  with pytest.raises(CalibrationError, match="camera 'a': camera name used more than once"):
    cam = cb.CameraCalibration('a', SIZE, K0, DIST, np.eye(3), np.zeros(3))
    cb.Calibration((cam, cam), 'mem', 'project', floor_known=False)
  with pytest.raises(CalibrationError, match=re.escape(str(path)) + '.*unknown format'):
    load_calibration(path, format='colmap')


# ------------------------------------------------------------------- Qualisys demo file


def _qualisys_demo_file(request, tmp_path):
  """Pose2Sim 0.10.49's Demo_SinglePerson Calib.qca.txt (from the package registry)."""
  try:
    from banet_jax.capture import demo  # noqa: PLC0415
  except ImportError:
    demo = None
  if demo is not None:
    try:
      folder = demo.demo_capture_dir(name='Demo_SinglePerson')
    except demo.DemoFetchError as e:
      pytest.skip(f'the package registry cannot be reached: {e}')
    return folder / 'calibration' / 'Calib.qca.txt'
  cache = getattr(request.config, 'cache', None)  # None with -p no:cacheprovider
  cache = cache.mkdir('pose2sim-0.10.49-wheel') if cache else tmp_path
  wheels = sorted(cache.glob('pose2sim-0.10.49-*.whl'))
  if not wheels:
    command = [sys.executable, '-m', 'pip', 'download', 'pose2sim==0.10.49', '--no-deps',
               '--quiet', '-d', str(cache)]
    try:
      subprocess.run(command, check=True, capture_output=True, text=True, timeout=600)
    except subprocess.CalledProcessError as e:
      pytest.skip(f'pip could not fetch pose2sim==0.10.49 (registry unreachable?): '
                  f'{e.stderr.strip()[-300:]}')
    except (subprocess.TimeoutExpired, OSError) as e:
      pytest.skip(f'pip could not fetch pose2sim==0.10.49: {e}')
    wheels = sorted(cache.glob('pose2sim-0.10.49-*.whl'))
  with zipfile.ZipFile(wheels[0]) as wheel:
    path = tmp_path / 'Calib.qca.txt'
    path.write_bytes(wheel.read('Pose2Sim/Demo_SinglePerson/calibration/Calib.qca.txt'))
  return path


def test_qualisys_demo_geometry(request, tmp_path):
  cal = load_calibration(_qualisys_demo_file(request, tmp_path))
  assert cal.format == 'qualisys' and cal.floor_known
  assert cal.names == ['cam01', 'cam02', 'cam03', 'cam04']
  for cam in cal:
    # The file's fov says 1088 x 1920 for all four (cam01 / cam02 videos are 1080 wide).
    assert cam.size in ((1088, 1920), (1080, 1920)), cam.size
    center = cam.center()
    assert 1.6 < center[1] < 2.2, (cam.name, center)  # 1.69 .. 2.09 m high
    assert 2.9 < np.linalg.norm(center) < 4.6, (cam.name, center)  # 3.06 .. 4.44 m away
    assert cam.image_up()[1] > 0.8  # upright portrait cameras
    origin = cam.project(np.zeros(3))  # the origin is in front and in the image
    head = cam.project(np.array([0.0, 1.7, 0.0]))
    assert np.all(np.isfinite(origin)) and np.all(np.isfinite(head))
    for pixel in (origin, head):
      assert 0 <= pixel[0] < cam.size[0] and 0 <= pixel[1] < cam.size[1], (cam.name, pixel)
    assert head[1] < origin[1]  # up in the world is up in the image
    to_origin = -center / np.linalg.norm(center)
    assert cam.optical_axis() @ to_origin > np.cos(np.radians(30))

"""Camera calibration files -> cameras in the project world, with lens distortion.

Contract. Every reader returns a `Calibration`: a tuple of `CameraCalibration`s in the
project world of `banet_jax.geometry` (the OpenSim ground frame: metres, y up; world ->
camera `x_cam = R @ X + t`; OpenCV pixels, integer coordinates at pixel centres; `K`
intrinsics) plus the OpenCV 5-coefficient lens distortion `dist = (k1, k2, p1, p2, k3)`
acting on normalised camera coordinates. `floor_known` says whether y = 0 is the floor
(true only when the calibration's own world has its ground plane there); `notes` lists
what a reader assumed (units guessed, world rotated, ...), for reports; `source_to_world`
(4, 4) maps points of the file's own world and units into the project world,
`X = S[:3, :3] @ X_file + S[:3, 3]` (so lab-frame data, e.g. Qualisys markers in mm, can
follow). Any malformed input raises `CalibrationError` naming the file and camera and
saying how to fix it.

Formats (`load_calibration(path, format='auto')`; each reader is also public):
  pose2sim  Pose2Sim `Calib.toml`: one table per camera (`name`, `size` [w, h], `matrix`,
            `distortions` [k1 k2 p1 p2 (k3)], `rotation` Rodrigues, `translation` metres,
            `fisheye`), `[metadata]` skipped. World: lab, Z up, floor at z = 0 -> floor
            known. Fisheye cameras are refused.
  qualisys  Qualisys `.qca.txt` (XML). Video cameras only (model containing 'video' or
            'none'; marker cameras are skipped and noted). Size from `fov_video`
            (right - left + 1, bottom - top + 1); focal lengths and principal point are in
            1/64 sensor pixels, the principal point minus the `fov_video` offset;
            `transform` x y z is the camera centre in mm (lab, Z up, floor known) and
            r11..r33 the rows of a world -> camera rotation into a camera frame with y up
            and z backwards, so the OpenCV rotation is diag(1, -1, -1) @ [r_ij] (checked on
            the Pose2Sim demo: every camera sees the origin in front of it).
            Distortion: `radialDistortion1..3` and `tangentalDistortion1..2` divided by
            `qualisys_distortion_scale`; the default 1.0 uses the file's values as they are
            (distortion coefficients act on normalised coordinates, so the division by 64
            Pose2Sim's converter applies has no unit reason). Which is right is settled by
            reprojection of detected landmarks, not here. Binned video (fewer pixels
            than `fov_video`) needs `CameraCalibration.resized`.
  anipose   aniposelib `CameraGroup.dump` toml (`[cam_0]`... tables, same keys as Pose2Sim
            without `fisheye`). World: the board's, in board units (`units`: 'auto' takes
            mm when the median camera-centre distance from the origin exceeds 50, else m;
            'm', 'cm', 'mm' force). No floor; up unknown: the world is rotated (smallest
            rotation, origin kept) so that the cameras' mean image-up direction (the -y
            camera axis in world) becomes +y. Both guesses are noted.
  opencap   OpenCap `cameraIntrinsicsExtrinsics.pickle` (one per camera: `intrinsicMat`,
            `distortion` (1, 5), `rotation` world -> camera, `translation` (3, 1) mm,
            `imageSize` [[rows], [cols]] = (height, width) as opencap-core reads it; when
            the principal point only fits the other order, that order is taken and noted).
            The path is a pickle, a folder of `CamN/cameraIntrinsicsExtrinsics.pickle`
            (camera names = folder names; a session folder holding `Videos/` works too),
            or a folder of `*.pickle`. Checkerboard world: no floor, up estimated as for
            anipose. Pickles run code when loaded: only load files you trust.
  banet     official BANet `<subject>_<action>_camera_info.npy`: a pickled dict with
            `front_camera_matrix` / `side_camera_matrix` (K) and `front_camera_rot_trans` /
            `side_camera_rot_trans` ([R | t], 3 x 4). Cameras 'front' and 'side'. World y up
            (no floor known); `units` as for anipose (the official code has used both m and
            mm). The file has no image size: pass `image_size` (w, h) or take the default
            (round(2 cx), round(2 cy)), noted.
  project   this project's TOML, written by `save_calibration`:
              format = "banet-jax-cameras"
              version = 1
              world = "opensim"      # y up, metres, world -> camera x = R @ X + t
              floor_known = true
              notes = ["...", ...]   # optional
              [[camera]]
              name = "cam01"
              size = [1088, 1920]    # width, height (pixels)
              K = [[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]]
              dist = [k1, k2, p1, p2, k3]
              R = [[...], [...], [...]]
              t = [tx, ty, tz]       # metres
            Floats are written as Python `repr`, so a save/load round trip is exact.

Auto-detection: a folder, `.pickle`/`.pkl` -> opencap; `.npy` -> banet; `.qca.txt`,
`.xml`, or a `.txt` starting with '<' -> qualisys; `.toml` -> by content: top-level
`format = "banet-jax-cameras"` -> project; else any camera table with a `fisheye` key ->
pose2sim (every Pose2Sim writer writes it, aniposelib's pinhole cameras never do); else
anipose, which assumes least (no units, no up). Force the choice with `format=`.

Z up -> y up (Pose2Sim, Qualisys): X = (y, z, x) (`ZUP_TO_YUP`, a proper rotation), so
R_new = R @ ZUP_TO_YUP.T and t is unchanged. This is the axis order of Pose2Sim's own
TRC and OpenSim outputs, so `.mot` files of both tools on one capture compare directly.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import pickle
import re
import tomllib
import xml.etree.ElementTree as ET

import cv2
import numpy as np

from banet_jax import geometry


def _frozen(value):
  """A read-only float64 copy."""
  array = np.array(value, np.float64)
  array.flags.writeable = False
  return array


# Lab (Z up) -> project world (y up): X_project = ZUP_TO_YUP @ X_lab = (y, z, x), as
# Pose2Sim writes its TRC files.
ZUP_TO_YUP = _frozen([[0, 1, 0], [0, 0, 1], [1, 0, 0]])
FORMATS = ('pose2sim', 'qualisys', 'anipose', 'opencap', 'banet', 'project')
PROJECT_FORMAT = 'banet-jax-cameras'
_ROTATION_TOL = 1e-5
_UNIT_SCALES = {'m': 1.0, 'cm': 0.01, 'mm': 0.001}


class CalibrationError(ValueError):
  """A calibration file or camera that cannot be used; the message names file and camera."""


def _where(source, camera):
  parts = [str(source)] if source is not None else []
  if camera is not None:
    parts.append(f'camera {camera!r}')
  return ': '.join(parts)


def _error(source, camera, problem, fix=''):
  where = _where(source, camera)
  return CalibrationError(f'{where}: {problem}' + (f'. {fix}' if fix else ''))


# ----------------------------------------------------------------------------- cameras


@dataclasses.dataclass(frozen=True, eq=False)
class CameraCalibration:
  """One calibrated camera in the project world (see the module docstring).

  name: str; size: (width, height) pixels; K: (3, 3); dist: (5,) OpenCV k1 k2 p1 p2 k3
  (4 values are padded with k3 = 0); R: (3, 3) world -> camera; t: (3,) metres. Arrays
  are copied to read-only float64; invalid values raise `CalibrationError`.
  """

  name: str
  size: tuple[int, int]
  K: np.ndarray
  dist: np.ndarray
  R: np.ndarray
  t: np.ndarray

  def __post_init__(self):
    name = self.name
    if not isinstance(name, str) or not name:
      raise _error(None, name, 'camera name must be a non-empty string')
    fail = lambda problem, fix='': _error(None, name, problem, fix)
    try:
      size = tuple(float(s) for s in self.size)
    except (TypeError, ValueError):
      raise fail(f'size {self.size!r} is not (width, height)') from None
    if (len(size) != 2 or not all(np.isfinite(size)) or min(size) < 1
        or any(abs(s - round(s)) > 1e-6 for s in size)):
      raise fail(f'size {self.size!r} is not two positive whole pixel counts (width, height)')
    arrays = {}
    for key, shape in (('K', (3, 3)), ('dist', None), ('R', (3, 3)), ('t', (3,))):
      try:
        array = np.array(getattr(self, key), np.float64)
      except (TypeError, ValueError):
        raise fail(f'{key} is not numeric') from None
      if key == 'dist':
        array = _dist_array(array, lambda p: fail(p))
      elif array.shape != shape:
        raise fail(f'{key} has shape {array.shape}, expected {shape}')
      if not np.all(np.isfinite(array)):
        raise fail(f'{key} has non-finite values: {array.tolist()}')
      arrays[key] = array
    K, R = arrays['K'], arrays['R']
    if K[0, 0] <= 0 or K[1, 1] <= 0 or K[1, 0] or K[2, 0] or K[2, 1] or K[2, 2] != 1:
      raise fail(f'K = {K.tolist()} is singular or not of the form '
                 '[[fx, 0, cx], [0, fy, cy], [0, 0, 1]] with fx, fy > 0',
                 'check the intrinsic matrix (and its units) in the file')
    if abs(K[0, 1]) > 1e-9 * K[0, 0]:
      raise fail(f'K has skew {K[0, 1]}, which the OpenCV distortion functions ignore',
                 'set K[0][1] to 0 if the skew is negligible')
    orth = np.abs(R @ R.T - np.eye(3)).max()
    if orth > _ROTATION_TOL or np.linalg.det(R) <= 0:
      raise fail(f'R is not a rotation (max |R R^T - I| = {orth:.2g}, det = '
                 f'{np.linalg.det(R):.4g})', 'the rotation must be orthonormal with det +1; '
                 'check the rotation entries (and that it is not camera -> world transposed '
                 'or mirrored)')
    object.__setattr__(self, 'size', tuple(int(round(s)) for s in size))
    for key, array in arrays.items():
      array.flags.writeable = False
      object.__setattr__(self, key, array)

  def center(self) -> np.ndarray:
    """Camera centre (3,) in the world, metres: -R.T @ t."""
    return geometry.camera_center(self.R, self.t)

  def optical_axis(self) -> np.ndarray:
    """Unit viewing direction (3,) in the world (the camera's +z axis)."""
    return self.R[2].copy()

  def image_up(self) -> np.ndarray:
    """Unit direction (3,) in the world of the image's up (the camera's -y axis)."""
    return -self.R[1]

  @property
  def has_distortion(self) -> bool:
    return bool(np.any(self.dist != 0))

  def as_camera(self):
    """`banet_jax.geometry.Camera` (K, R, t) of this camera (distortion dropped)."""
    return geometry.Camera(self.K, self.R, self.t)

  def project(self, points, distort=True) -> np.ndarray:
    """World points (..., 3) metres -> pixels (..., 2) float64 (OpenCV model when `distort`).

    Points at or behind the camera plane give nan.
    """
    points = np.asarray(points, np.float64)
    cam = points @ self.R.T + self.t
    z = cam[..., 2:3]
    with np.errstate(divide='ignore', invalid='ignore'):
      xy = np.where(z > 0, cam[..., :2] / np.where(z > 0, z, 1.0), np.nan)
    if distort:
      xy = geometry.distort_normalized(xy, self.dist)
    return xy @ self.K[:2, :2].T + self.K[:2, 2]

  def undistort_points(self, pixels) -> np.ndarray:
    """Distorted pixels (..., 2) -> ideal pinhole pixels (..., 2) with the same K."""
    pixels = np.asarray(pixels, np.float64)
    if not self.has_distortion:
      return pixels.copy()
    flat = np.ascontiguousarray(pixels.reshape(-1, 1, 2))
    if flat.shape[0] == 0:
      return pixels.copy()
    criteria = (cv2.TERM_CRITERIA_COUNT + cv2.TERM_CRITERIA_EPS, 100, 1e-10)
    if hasattr(cv2, 'undistortPointsIter'):  # OpenCV 4
      out = cv2.undistortPointsIter(flat, self.K, self.dist, None, self.K, criteria)
    else:
      out = cv2.undistortPoints(flat, self.K, self.dist, R=None, P=self.K, criteria=criteria)
    return out.reshape(pixels.shape)

  def undistort_maps(self) -> tuple[np.ndarray, np.ndarray]:
    """(map_x, map_y), each (height, width) float32, for `cv2.remap(frame, map_x, map_y,
    interpolation)`: the result is the ideal pinhole image with the same K and size
    (use nearest interpolation for masks)."""
    return cv2.initUndistortRectifyMap(self.K, self.dist, None, self.K, self.size,
                                       cv2.CV_32FC1)

  def resized(self, size) -> CameraCalibration:
    """The camera for frames resized to `size` (width, height) (e.g. `cv2.resize`, binning).

    Pixel centres map as u' = (u + 0.5) * sx - 0.5 with sx = new width / width (same in y).
    """
    (w, h), (nw, nh) = self.size, size
    sx, sy = nw / w, nh / h
    K = self.K.copy()
    K[0] *= sx
    K[1] *= sy
    K[0, 2] += 0.5 * sx - 0.5
    K[1, 2] += 0.5 * sy - 0.5
    return dataclasses.replace(self, size=(nw, nh), K=K)

  def scaled(self, factor: float) -> CameraCalibration:
    """`resized` to (round(width * factor), round(height * factor))."""
    w, h = self.size
    return self.resized((int(round(w * factor)), int(round(h * factor))))


def _dist_array(array, fail):
  """Distortion values -> (5,) k1 k2 p1 p2 k3; 4 padded; longer only with zero extras."""
  array = np.asarray(array, np.float64).ravel()
  if array.size == 4:
    return np.concatenate([array, [0.0]])
  if array.size == 5:
    return array
  if array.size in (8, 12, 14) and not np.any(array[5:]):
    return array[:5]
  raise fail(f'distortion has {array.size} values {array.tolist()}; the supported model is '
             'OpenCV k1 k2 p1 p2 [k3] (4 or 5 values; rational / thin-prism terms must be 0)')


def _rotation_to(a, b):
  """Smallest rotation (3, 3) taking unit vector a to unit vector b."""
  v, c = np.cross(a, b), float(a @ b)
  if c < -1 + 1e-12:  # opposite: half turn about any axis perpendicular to a
    axis = np.cross(a, [1.0, 0, 0] if abs(a[0]) < 0.9 else [0, 1.0, 0])
    axis /= np.linalg.norm(axis)
    return 2 * np.outer(axis, axis) - np.eye(3)
  vx = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
  return np.eye(3) + vx + vx @ vx / (1 + c)


def _moved(cam, A, b, scale=1.0):
  """`cam` in the world X' = scale * A @ X + b (A a rotation)."""
  R = cam.R @ A.T
  return dataclasses.replace(cam, R=R, t=scale * cam.t - R @ b)


# ---------------------------------------------------------------------------- calibration


@dataclasses.dataclass(frozen=True, eq=False)
class Calibration:
  """Cameras in the project world plus where they came from (see the module docstring)."""

  cameras: tuple[CameraCalibration, ...]
  source: str
  format: str
  floor_known: bool
  notes: tuple[str, ...] = ()
  source_to_world: np.ndarray = dataclasses.field(default_factory=lambda: np.eye(4))

  def __post_init__(self):
    cameras = tuple(self.cameras)
    if not cameras:
      raise _error(self.source, None, 'no cameras', 'the file must describe at least one camera')
    names = [c.name for c in cameras]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
      raise _error(self.source, duplicates[0], 'camera name used more than once',
                   'give every camera a distinct name')
    if self.format not in FORMATS:
      raise _error(self.source, None, f'unknown format {self.format!r}; one of {FORMATS}')
    object.__setattr__(self, 'cameras', cameras)
    object.__setattr__(self, 'notes', tuple(str(n) for n in self.notes))
    object.__setattr__(self, 'floor_known', bool(self.floor_known))
    object.__setattr__(self, 'source', str(self.source))
    object.__setattr__(self, 'source_to_world', _frozen(self.source_to_world))

  @property
  def names(self) -> list[str]:
    return [c.name for c in self.cameras]

  def __len__(self):
    return len(self.cameras)

  def __iter__(self):
    return iter(self.cameras)

  def camera(self, name: str) -> CameraCalibration:
    for cam in self.cameras:
      if cam.name == name:
        return cam
    raise _error(self.source, name, 'no such camera',
                 f'available cameras: {", ".join(self.names)}')

  def select(self, names) -> Calibration:
    """The cameras `names` (a sequence of names), in that order."""
    if isinstance(names, str):
      names = [names]
    return dataclasses.replace(self, cameras=tuple(self.camera(n) for n in names))

  def transformed(self, R_w, t_w, *, scale=1.0, floor_known=None, note=None) -> Calibration:
    """Every camera re-expressed in the new world X' = scale * R_w @ X + t_w.

    R_w (3, 3) a rotation; t_w (3,) metres (new world); scale > 0 (unit change).
    `floor_known` None keeps the current value; `note` (str) is appended to `notes`.
    """
    A, b = np.asarray(R_w, np.float64), np.asarray(t_w, np.float64)
    if (A.shape != (3, 3) or b.shape != (3,) or np.abs(A @ A.T - np.eye(3)).max() > 1e-9
        or np.linalg.det(A) <= 0 or not scale > 0):
      raise _error(self.source, None, 'transformed needs a rotation R_w (3, 3), a translation '
                   't_w (3,) and a positive scale')
    S = np.eye(4)
    S[:3, :3], S[:3, 3] = scale * A, b
    return dataclasses.replace(
        self, cameras=tuple(_moved(c, A, b, scale) for c in self.cameras),
        floor_known=self.floor_known if floor_known is None else floor_known,
        notes=self.notes + ((note,) if note else ()),
        source_to_world=S @ self.source_to_world)


def _from_zup(calibration: Calibration, what: str) -> Calibration:
  return calibration.transformed(
      ZUP_TO_YUP, np.zeros(3),
      note=f"{what} world is Z up (lab); converted to y up with X = (y, z, x), Pose2Sim's order")


def _level(calibration: Calibration) -> Calibration:
  """Rotate the world so that the cameras' mean image-up direction is +y (origin kept)."""
  mean_up = np.mean([c.image_up() for c in calibration.cameras], axis=0)
  agreement = float(np.linalg.norm(mean_up))
  if agreement < 1e-6:
    return dataclasses.replace(calibration, notes=calibration.notes + (
        'up direction unknown and the cameras disagree about it; world left as in the file',))
  up = mean_up / agreement
  A = _rotation_to(up, np.array([0.0, 1.0, 0.0]))
  angle = np.degrees(np.arccos(np.clip(up[1], -1, 1)))
  note = (f'up unknown in the file: world rotated by {angle:.1f} deg so that the cameras\' '
          f'mean image-up direction (file world {np.round(up, 4).tolist()}) is +y; no floor')
  if agreement < 0.7:
    note += f' (unreliable: the cameras\' image-up directions disagree, |mean| = {agreement:.2f})'
  return calibration.transformed(A, np.zeros(3), note=note)


def _rescale(calibration, units, what):
  """World units -> metres: units 'auto' | 'm' | 'cm' | 'mm'."""
  if units == 'auto':
    median = float(np.median([np.linalg.norm(c.center()) for c in calibration.cameras]))
    units = 'mm' if median > 50 else 'm'
    note = (f'{what} units guessed as {units} (median camera distance from the origin '
            f'{median:.4g} file units; pass units= to override)')
  elif units in _UNIT_SCALES:
    note = f'{what} units: {units} (given)'
  else:
    raise _error(calibration.source, None, f'units {units!r} unknown',
                 f"use 'auto' or one of {sorted(_UNIT_SCALES)}")
  scale = _UNIT_SCALES[units]
  if scale == 1.0:
    return dataclasses.replace(calibration, notes=calibration.notes + (note,))
  return calibration.transformed(np.eye(3), np.zeros(3), scale=scale, note=note)


# ------------------------------------------------------------------------- file helpers


def _camera(source, name, **fields) -> CameraCalibration:
  """CameraCalibration whose errors name the file."""
  try:
    return CameraCalibration(name=name, **fields)
  except CalibrationError as e:
    raise CalibrationError(f'{source}: {e}') from None


def _get(table, key, source, camera, needed):
  if key not in table:
    raise _error(source, camera, f'missing key {key!r}', f'a camera needs {", ".join(needed)}')
  return table[key]


def _array(value, shape, key, source, camera):
  try:
    array = np.array(value, np.float64)
  except (TypeError, ValueError):
    raise _error(source, camera, f'{key!r} is not numeric: {value!r}') from None
  if array.shape != shape and not (len(shape) == 1 and array.size == shape[0]):
    raise _error(source, camera, f'{key!r} has shape {array.shape}, expected {shape}')
  return array.reshape(shape)


def _dist_from(value, key, source, camera):
  try:
    array = np.array(value, np.float64)
  except (TypeError, ValueError):
    raise _error(source, camera, f'{key!r} is not numeric: {value!r}') from None
  return _dist_array(array, lambda problem: _error(source, camera, problem))


def _rotation_from(value, key, source, camera):
  """Rodrigues vector (3,) or matrix (3, 3) -> (3, 3)."""
  try:
    array = np.array(value, np.float64)
  except (TypeError, ValueError):
    raise _error(source, camera, f'{key!r} is not numeric: {value!r}') from None
  if array.shape == (3, 3):
    return array
  if array.size != 3:
    raise _error(source, camera, f'{key!r} has shape {array.shape}, expected a Rodrigues '
                 'vector (3,) or a matrix (3, 3)')
  if not np.all(np.isfinite(array)):
    raise _error(source, camera, f'{key!r} has non-finite values: {array.tolist()}')
  return cv2.Rodrigues(array.reshape(3))[0]


def _natural_key(text):
  return [int(p) if p.isdigit() else p.lower() for p in re.split(r'(\d+)', text)]


def _read_toml(path):
  try:
    with open(path, 'rb') as f:
      return tomllib.load(f)
  except tomllib.TOMLDecodeError as e:
    raise _error(path, None, f'not valid TOML ({e})',
                 'check the file is a calibration TOML') from None
  except UnicodeDecodeError as e:
    raise _error(path, None, f'not a text TOML file ({e})') from None


_OPENCV_KEYS = ('size', 'matrix', 'distortions', 'rotation', 'translation')


def _opencv_toml_cameras(path, data, what):
  """Camera tables of a Pose2Sim / aniposelib toml -> [(name, table)] in file order."""
  tables = [(k, v) for k, v in data.items() if isinstance(v, dict) and k != 'metadata']
  if not tables:
    raise _error(path, None, 'no camera tables', f'a {what} toml has one table per camera '
                 f'with {", ".join(_OPENCV_KEYS)}')
  cams = []
  for key, table in tables:
    name = table.get('name', key)
    name = str(name) if name not in (None, '') else key
    if table.get('fisheye') is True:
      raise _error(path, name, 'fisheye camera', 'fisheye calibrations are not supported; '
                   'recalibrate with the pinhole (OpenCV) model')
    cams.append((name, table))
  return cams


def _opencv_toml_calibration(path, data, fmt, what):
  cams = []
  for name, table in _opencv_toml_cameras(path, data, what):
    needed = ('name',) + _OPENCV_KEYS
    vals = {k: _get(table, k, path, name, needed) for k in _OPENCV_KEYS}
    dist = _dist_from(vals['distortions'], 'distortions', path, name)
    cams.append(_camera(
        path, name, size=tuple(_array(vals['size'], (2,), 'size', path, name)),
        K=_array(vals['matrix'], (3, 3), 'matrix', path, name), dist=dist,
        R=_rotation_from(vals['rotation'], 'rotation', path, name),
        t=_array(vals['translation'], (3,), 'translation', path, name)))
  return cams


# ------------------------------------------------------------------------------- readers


def read_pose2sim_toml(path) -> Calibration:
  """Pose2Sim `Calib.toml` (Z-up lab world, metres) -> Calibration (floor known)."""
  path = _existing(path)
  cams = _opencv_toml_calibration(path, _read_toml(path), 'pose2sim', 'Pose2Sim')
  cal = Calibration(tuple(cams), str(path), 'pose2sim', floor_known=True)
  return _from_zup(cal, 'Pose2Sim')


def read_anipose_toml(path, units='auto') -> Calibration:
  """aniposelib toml (board world, board units) -> Calibration, up estimated, no floor."""
  path = _existing(path)
  cams = _opencv_toml_calibration(path, _read_toml(path), 'anipose', 'aniposelib')
  cal = Calibration(tuple(cams), str(path), 'anipose', floor_known=False)
  return _level(_rescale(cal, units, 'aniposelib'))


def read_qualisys_qca(path, qualisys_distortion_scale=1.0) -> Calibration:
  """Qualisys `.qca.txt` (XML; lab world Z up, mm) -> Calibration (floor known).

  `qualisys_distortion_scale`: the file's distortion values are divided by it (1.0: used
  as they are; 64: as Pose2Sim's converter). Which one reprojects best is decided by
  reprojection of detected landmarks elsewhere, not here.
  """
  path = _existing(path)
  scale = qualisys_distortion_scale
  if not (isinstance(scale, (int, float)) and np.isfinite(scale) and scale > 0):
    raise _error(path, None, f'qualisys_distortion_scale {scale!r} must be a positive number')
  try:
    root = ET.parse(path).getroot()
  except ET.ParseError as e:
    raise _error(path, None, f'not valid XML ({e})', 'pass the Qualisys .qca.txt file') from None
  elements = root.findall('cameras/camera')
  if not elements:
    raise _error(path, None, 'no <cameras><camera> elements', 'pass a Qualisys .qca.txt file')
  cams, skipped = [], []
  for i, element in enumerate(elements):
    name = element.get('serial') or element.get('id') or f'cam{i + 1}'
    model = element.get('model', 'none')
    if 'video' not in model.lower() and model.lower() != 'none':
      skipped.append(f'{name} ({model})')
      continue
    cams.append(_qualisys_camera(path, element, name, scale))
  if not cams:
    raise _error(path, None, f'no video cameras (marker cameras: {", ".join(skipped)})',
                 'the calibration must include the video cameras')
  notes = [f'Qualisys distortion divided by {scale:g}'
           + (' (the file\'s values as they are)' if scale == 1 else '')]
  if skipped:
    notes.append(f'Qualisys marker cameras skipped: {", ".join(skipped)}')
  S = np.eye(4)
  S[:3, :3] *= 0.001
  cal = Calibration(tuple(cams), str(path), 'qualisys', floor_known=True, notes=tuple(notes),
                    source_to_world=S)  # cameras are built in metres; the file is in mm
  return _from_zup(cal, 'Qualisys')


def _qualisys_camera(path, element, name, scale):
  def attrs(tag, keys):
    node = element.find(tag)
    if node is None:
      raise _error(path, name, f'missing <{tag}> element', 'the .qca.txt file looks truncated')
    out = []
    for key in keys:
      if key not in node.attrib:
        raise _error(path, name, f'<{tag}> has no {key!r} attribute')
      try:
        out.append(float(node.attrib[key]))
      except ValueError:
        raise _error(path, name, f'<{tag}> {key}={node.attrib[key]!r} is not a number') from None
    return out

  left, top, right, bottom = attrs('fov_video', ('left', 'top', 'right', 'bottom'))
  fu, fv, cu, cv_, k1, k2, k3, p1, p2 = attrs('intrinsic', (
      'focalLengthU', 'focalLengthV', 'centerPointU', 'centerPointV', 'radialDistortion1',
      'radialDistortion2', 'radialDistortion3', 'tangentalDistortion1', 'tangentalDistortion2'))
  tr = attrs('transform', ('x', 'y', 'z') + tuple(f'r{i}{j}' for i in '123' for j in '123'))
  K = np.array([[fu / 64, 0, cu / 64 - left], [0, fv / 64, cv_ / 64 - top], [0, 0, 1]])
  R = np.diag([1.0, -1.0, -1.0]) @ np.array(tr[3:]).reshape(3, 3)
  center = np.array(tr[:3]) / 1000
  return _camera(path, name, size=(right - left + 1, bottom - top + 1), K=K,
                 dist=np.array([k1, k2, p1, p2, k3]) / scale, R=R, t=-R @ center)


_OPENCAP_FILE = 'cameraIntrinsicsExtrinsics.pickle'
_OPENCAP_KEYS = ('intrinsicMat', 'distortion', 'rotation', 'translation', 'imageSize')


def _opencap_files(path):
  """[(camera name, pickle path)] for an OpenCap pickle or folder."""
  if path.is_file():
    name = path.parent.name if path.name == _OPENCAP_FILE else path.stem
    return [(name or path.stem, path)]
  for folder in (path, path / 'Videos'):
    files = sorted(folder.glob(f'*/{_OPENCAP_FILE}'), key=lambda p: _natural_key(p.parent.name))
    if files:
      return [(f.parent.name, f) for f in files]
  files = sorted(path.glob('*.pickle'), key=lambda p: _natural_key(p.stem))
  if files:
    return [(f.stem, f) for f in files]
  raise _error(path, None, f'no OpenCap calibration found (looked for */{_OPENCAP_FILE}, '
               f'Videos/*/{_OPENCAP_FILE}, *.pickle)', 'pass the folder holding the CamN '
               'folders, or one pickle')


def read_opencap(path, units='mm') -> Calibration:
  """OpenCap pickle(s) (checkerboard world, mm) -> Calibration, up estimated, no floor.

  `path`: a `cameraIntrinsicsExtrinsics.pickle`, a folder of `CamN/` folders holding one
  (or a session folder with `Videos/`), or a folder of `*.pickle`. `units`: translation
  units ('mm' as OpenCap writes them; 'auto', 'm', 'cm').
  """
  path = _existing(path)
  cams, notes = [], []
  for name, file in _opencap_files(path):
    try:
      with open(file, 'rb') as f:
        data = pickle.load(f)
    except Exception as e:  # noqa: BLE001 (any unpickling failure is a bad file)
      raise _error(file, name, f'cannot unpickle ({type(e).__name__}: {e})',
                   'pass an OpenCap cameraIntrinsicsExtrinsics.pickle') from None
    if not isinstance(data, dict):
      raise _error(file, name, f'holds a {type(data).__name__}, not a dict',
                   'pass an OpenCap cameraIntrinsicsExtrinsics.pickle')
    v = {k: _get(data, k, file, name, _OPENCAP_KEYS) for k in _OPENCAP_KEYS}
    K = _array(v['intrinsicMat'], (3, 3), 'intrinsicMat', file, name)
    rows, cols = _array(v['imageSize'], (2,), 'imageSize', file, name)
    if (K[0, 2] > cols or K[1, 2] > rows) and K[0, 2] <= rows and K[1, 2] <= cols:
      rows, cols = cols, rows
      notes.append(f'{name}: imageSize read as [width, height] (the principal point '
                   'does not fit [height, width])')
    dist = _dist_from(v['distortion'], 'distortion', file, name)
    cams.append(_camera(file, name, size=(cols, rows), K=K, dist=dist,
                        R=_array(v['rotation'], (3, 3), 'rotation', file, name),
                        t=_array(v['translation'], (3,), 'translation', file, name)))
  cal = Calibration(tuple(cams), str(path), 'opencap', floor_known=False, notes=tuple(notes))
  return _level(_rescale(cal, units, 'OpenCap'))


def read_banet_npy(path, units='auto', image_size=None) -> Calibration:
  """Official BANet `*_camera_info.npy` -> Calibration ('front', 'side'; y up, no floor).

  `image_size`: None (default (round(2 cx), round(2 cy)), noted), (width, height) for
  both cameras, or {name: (width, height)}.
  """
  path = _existing(path)
  try:
    array = np.load(path, allow_pickle=True)
    data = array.item() if isinstance(array, np.ndarray) and array.dtype == object else array
  except Exception as e:  # noqa: BLE001
    raise _error(path, None, f'cannot read as a pickled numpy dict ({type(e).__name__}: {e})',
                 'pass a BANet <subject>_<action>_camera_info.npy') from None
  if not isinstance(data, dict):
    raise _error(path, None, f'holds {type(data).__name__}, not a dict',
                 'pass a BANet <subject>_<action>_camera_info.npy')
  cams, notes = [], []
  for name in ('front', 'side'):
    keys = (f'{name}_camera_matrix', f'{name}_camera_rot_trans')
    K = _array(_get(data, keys[0], path, name, keys), (3, 3), keys[0], path, name)
    Rt = _array(_get(data, keys[1], path, name, keys), (3, 4), keys[1], path, name)
    size = image_size.get(name) if isinstance(image_size, dict) else image_size
    if size is None:
      size = (int(round(2 * K[0, 2])), int(round(2 * K[1, 2])))
      notes.append(f'{name}: image size not in the file; taken as (2 cx, 2 cy) = {size}')
    cams.append(_camera(path, name, size=size, K=K, dist=np.zeros(5), R=Rt[:, :3], t=Rt[:, 3]))
  cal = Calibration(tuple(cams), str(path), 'banet', floor_known=False, notes=tuple(notes))
  return _rescale(cal, units, 'BANet')


def read_project_toml(path) -> Calibration:
  """This project's TOML (see the module docstring) -> Calibration."""
  path = _existing(path)
  data = _read_toml(path)
  fix = f'write it with save_calibration (format = "{PROJECT_FORMAT}", version = 1)'
  if data.get('format') != PROJECT_FORMAT:
    raise _error(path, None, f'format is {data.get("format")!r}, not {PROJECT_FORMAT!r}', fix)
  if data.get('version') != 1:
    raise _error(path, None, f'version {data.get("version")!r} unsupported (this reader: 1)', fix)
  if data.get('world') != 'opensim':
    raise _error(path, None, f'world {data.get("world")!r} unsupported (expected "opensim")', fix)
  tables = data.get('camera')
  if not isinstance(tables, list) or not tables:
    raise _error(path, None, 'no [[camera]] tables', fix)
  cams = []
  keys = ('name', 'size', 'K', 'dist', 'R', 't')
  for i, table in enumerate(tables):
    name = str(table.get('name', f'#{i}'))
    v = {k: _get(table, k, path, name, keys) for k in keys}
    cams.append(_camera(path, name, size=tuple(_array(v['size'], (2,), 'size', path, name)),
                        K=_array(v['K'], (3, 3), 'K', path, name),
                        dist=_array(v['dist'], (5,), 'dist', path, name),
                        R=_array(v['R'], (3, 3), 'R', path, name),
                        t=_array(v['t'], (3,), 't', path, name)))
  return Calibration(tuple(cams), str(path), 'project', floor_known=bool(data.get('floor_known')),
                     notes=tuple(data.get('notes', ())))


# ------------------------------------------------------------------------ load / save


def _existing(path) -> pathlib.Path:
  path = pathlib.Path(os.fspath(path))
  if not path.exists():
    raise _error(path, None, 'file not found', 'check the path')
  return path


def detect_format(path) -> str:
  """The format `load_calibration(path)` would use (rule in the module docstring)."""
  path = _existing(path)
  name = path.name.lower()
  if path.is_dir() or name.endswith(('.pickle', '.pkl')):
    return 'opencap'
  if name.endswith('.npy'):
    return 'banet'
  if name.endswith(('.qca.txt', '.xml')):
    return 'qualisys'
  if name.endswith('.txt'):
    with open(path, 'rb') as f:
      if f.read(256).lstrip().startswith(b'<'):
        return 'qualisys'
  if name.endswith('.toml'):
    data = _read_toml(path)
    if 'format' in data:
      return 'project'
    tables = [v for k, v in data.items() if isinstance(v, dict) and k != 'metadata']
    return 'pose2sim' if any('fisheye' in t for t in tables) else 'anipose'
  raise _error(path, None, 'unknown calibration format',
               f'pass format= one of {", ".join(FORMATS)} (extensions: .toml, .qca.txt, '
               '.pickle or a folder, .npy)')


def load_calibration(path, format='auto', *, qualisys_distortion_scale=1.0, units='auto',
                     image_size=None) -> Calibration:
  """A calibration file (or OpenCap folder) -> Calibration in the project world.

  format: 'auto' (module docstring) or one of FORMATS. qualisys_distortion_scale: see
  `read_qualisys_qca`. units: anipose / banet / opencap world units ('auto' guesses;
  OpenCap's 'auto' means mm). image_size: banet only (see `read_banet_npy`).
  """
  path = _existing(path)
  fmt = detect_format(path) if format == 'auto' else format
  if fmt not in FORMATS:
    raise _error(path, None, f'unknown format {format!r}', f"use 'auto' or one of {FORMATS}")
  if fmt == 'pose2sim':
    return read_pose2sim_toml(path)
  if fmt == 'anipose':
    return read_anipose_toml(path, units)
  if fmt == 'qualisys':
    return read_qualisys_qca(path, qualisys_distortion_scale)
  if fmt == 'opencap':
    return read_opencap(path, 'mm' if units == 'auto' else units)
  if fmt == 'banet':
    return read_banet_npy(path, units, image_size)
  return read_project_toml(path)


def _toml_str(text) -> str:
  return json.dumps(str(text), ensure_ascii=False).replace('\x7f', '\\u007f')


def _toml_floats(values) -> str:
  values = np.asarray(values, np.float64)
  if values.ndim == 2:
    return '[' + ', '.join(_toml_floats(row) for row in values) + ']'
  return '[' + ', '.join(repr(float(v)) for v in values) + ']'


def save_calibration(calibration: Calibration, path) -> None:
  """Write `calibration` in the project format (module docstring); exact round trip."""
  lines = [f'format = "{PROJECT_FORMAT}"', 'version = 1', 'world = "opensim"',
           f'floor_known = {str(calibration.floor_known).lower()}',
           'notes = [' + ', '.join(_toml_str(n) for n in calibration.notes) + ']']
  for cam in calibration.cameras:
    lines += ['', '[[camera]]', f'name = {_toml_str(cam.name)}',
              f'size = [{cam.size[0]}, {cam.size[1]}]', f'K = {_toml_floats(cam.K)}',
              f'dist = {_toml_floats(cam.dist)}', f'R = {_toml_floats(cam.R)}',
              f't = {_toml_floats(cam.t)}']
  pathlib.Path(path).write_text('\n'.join(lines) + '\n', encoding='utf-8')


def write_pose2sim_toml(calibration: Calibration, path) -> None:
  """Write `calibration` as a Pose2Sim `Calib.toml` (Z-up world, metres, Rodrigues).

  The inverse of `read_pose2sim_toml` (Rodrigues vectors round trip to ~1e-15).
  """
  lines = []
  for cam in calibration.cameras:
    R_lab = cam.R @ ZUP_TO_YUP
    dist = cam.dist if cam.dist[4] else cam.dist[:4]
    lines += [f'[{_toml_str(cam.name)}]', f'name = {_toml_str(cam.name)}',
              f'size = [{float(cam.size[0])!r}, {float(cam.size[1])!r}]',
              f'matrix = {_toml_floats(cam.K)}', f'distortions = {_toml_floats(dist)}',
              f'rotation = {_toml_floats(cv2.Rodrigues(R_lab)[0].ravel())}',
              f'translation = {_toml_floats(cam.t)}', 'fisheye = false', '']
  lines += ['[metadata]', 'adjusted = false', 'error = 0.0']
  pathlib.Path(path).write_text('\n'.join(lines) + '\n', encoding='utf-8')
